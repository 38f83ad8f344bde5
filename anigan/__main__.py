from anigan.cli import main

main()
