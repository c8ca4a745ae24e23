from citypay.audit.cli import cli

cli(prog_name="python -m citypay.audit")
