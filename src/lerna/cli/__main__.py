from lerna.cli import main

main()
