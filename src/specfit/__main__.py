from specfit.cli import main

raise SystemExit(main())
