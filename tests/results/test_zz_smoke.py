import sys
from engage import db
from engage.services.results import build_report
from engage.results.writers import iter_aggregate_csv, iter_aggregate_json
from tests.results.conftest import seed_population


def test_smoke(app, seed):
    seed_population(seed)
    with app.app_context():
        r = build_report(db.session(), "working-conditions", ["state"])
        sys.stdout.write("".join(iter_aggregate_csv(r)))
        r = build_report(db.session(), "working-conditions", [])
        sys.stdout.write("".join(iter_aggregate_json(r)))
