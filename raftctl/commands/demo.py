"""placeholder"""
HELP = "demo"
EPILOG = ""
def command() -> None:
    """x"""
