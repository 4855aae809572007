from fwc.cli import main

raise SystemExit(main())
