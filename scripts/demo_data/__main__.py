"""Load the demo data into a database: run by scripts/demo.py as

    python -m demo_data --config <trytond.conf> --database <name>

with scripts/ on the path, after trytond-admin has activated the modules.
"""
import argparse

from . import load


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', required=True)
    parser.add_argument('--database', required=True)
    args = parser.parse_args()

    from proteus import Model, config
    config.set_trytond(database=args.database, config_file=args.config)
    Module = Model.get('ir.module')
    activated = [m.name for m in Module.find([('state', '=', 'activated')])]
    load(activated)


if __name__ == '__main__':
    main()
