from tansiq.cli import main

main()
