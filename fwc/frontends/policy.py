"""Front end for the policy language; the implementation lives in the fwc.policy package."""

from fwc.policy import (PolicyResult, compile_full, compile_policy,  # noqa: F401
                        compile_policy_file, compile_policy_nft)
