"""Export throughput and memory: seed judgments with COPY, export pairwise Parquet, print
judgments/s and peak RSS at each size (targets: >= 50k judgments/s; peak RSS < 1 GB and flat).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/auralign python bench/export.py [--quick]

DATABASE_URL names the PostgreSQL server: the bench creates its own database
(`<name>_bench_export`), drops it at the end, and writes the export files to a temporary folder
(or to S3 when AURALIGN_STORAGE=s3). Each export runs in a fresh child process, so its peak RSS
is the export's alone. Sizes: 100k and 1M judgments (--quick: 5k and 20k). The last line is one
JSON object with the figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "platform"), str(REPO)]

OVERLAP, ANNOTATORS, TIE_RATE = 3, 60, 0.1


def _django(database_url: str, media_root: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "bench-export-" + "x" * 40)
    os.environ.setdefault("AURALIGN_MEDIA_ROOT", media_root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def _copy(cursor, model, rows) -> None:
    """COPY rows (dicts by attname) into a model's table; absent fields take their defaults."""
    from django.db.models import JSONField
    from psycopg.types.json import Jsonb

    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return
    pk = model._meta.pk.attname
    fields = [f for f in model._meta.concrete_fields if f.attname != pk or pk in first]  # else the database numbers them
    columns = ", ".join(f'"{f.column}"' for f in fields)
    now = datetime.now(UTC)
    fixed, per_row = {}, {}
    for f in fields:
        if getattr(f, "auto_now_add", False) or getattr(f, "auto_now", False):
            fixed[f.attname] = now
        elif f.has_default() and callable(f.default):  # uuid4, dict, random tiebreak...: called for each row
            per_row[f.attname] = f.default
        else:  # "" for blank text, constants as declared
            fixed[f.attname] = f.get_default()
    json_fields = {f.attname for f in fields if isinstance(f, JSONField)}
    with cursor.copy(f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN') as copy:
        for row in itertools.chain([first], rows):
            values = []
            for f in fields:
                name = f.attname
                v = row[name] if name in row else per_row[name]() if name in per_row else fixed[name]
                values.append(Jsonb(v) if name in json_fields and v is not None else v)
            copy.write_row(values)


def _next_id(cursor, model) -> int:
    cursor.execute(f'SELECT COALESCE(MAX(id), 0) + 1 FROM "{model._meta.db_table}"')
    return cursor.fetchone()[0]


def _reset_sequences(cursor, models) -> None:
    for model in models:
        table = model._meta.db_table
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), (SELECT MAX(id) FROM \"{table}\"))")


class Seeder:
    """One campaign (2 policies, seed rubric) whose items each show 2 candidates of a dialogue and
    are judged by 3 annotators; `grow(n)` adds judgments until the campaign has n."""

    def __init__(self, dialogues: int) -> None:
        from auralign.accounts.models import User
        from auralign.campaigns.models import Campaign, CampaignPolicy, Membership
        from auralign.dialogues.models import DialogueSet
        from auralign.policies.models import Policy
        from auralign.rubrics.seed import SEED_CRITERIA, SEED_INSTRUCTIONS
        from auralign.rubrics.services import rubric_create, rubric_version_freeze

        rubric = rubric_version_freeze(
            version=rubric_create(slug="bench", name="Bench", criteria=SEED_CRITERIA, instructions=SEED_INSTRUCTIONS)
        )
        self.criteria = [c["key"] for c in SEED_CRITERIA]
        self.dialogue_set = DialogueSet.objects.create(name="bench")
        self.policies = [
            Policy.objects.create(name=f"bench-{i}", backend="hf", config={"checkpoint": "/none"}) for i in range(2)
        ]
        self.trainer = User.objects.create_user(username="bench-trainer")
        self.campaign = Campaign.objects.create(
            name="bench", rubric_version=rubric, dialogue_set=self.dialogue_set, candidates_per_item=2,
            judgments_per_item=OVERLAP, status="annotating",
        )
        for p in self.policies:
            CampaignPolicy.objects.create(campaign=self.campaign, policy=p, samples_per_dialogue=16)
        Membership.objects.create(campaign=self.campaign, user=self.trainer, role="trainer")
        self.annotators = [User.objects.create_user(username=f"bench-ann-{i}").pk for i in range(ANNOTATORS)]
        self.rubric_id = rubric.pk
        self.rng = random.Random(0)
        self.items = 0
        self.dialogue_ids = self._seed_dialogues(dialogues)

    def _seed_dialogues(self, n: int) -> list[int]:
        from django.db import connection

        from auralign.dialogues.models import Dialogue, Turn

        with connection.cursor() as cursor:
            first = _next_id(cursor, Dialogue)
            _copy(cursor, Dialogue, ({"id": first + i, "dialogue_set_id": self.dialogue_set.pk, "external_id": f"d{i}",
                                      "metadata": {}, "content_sha256": "0" * 64} for i in range(n)))
            roles = ["user", "assistant", "user"]
            _copy(cursor, Turn, ({"dialogue_id": first + i, "index": j, "role": role,
                                  "text": f"{role} turn {j} of dialogue {i}: could you tell me more about that?"}
                                 for i in range(n) for j, role in enumerate(roles)))
            _reset_sequences(cursor, [Dialogue, Turn])
        return list(range(first, first + n))

    def _judgment(self, pk: int, assignment: int, item_id: int, pair: list[str], annotator: int) -> dict:
        a, b = pair
        roll = self.rng.random()
        ranking = [[a, b]] if roll < TIE_RATE else ([[a], [b]] if roll < 0.55 else [[b], [a]])
        return {"id": pk, "campaign_id": self.campaign.pk, "item_id": item_id, "assignment_id": assignment,
                "annotator_id": annotator, "rubric_version_id": self.rubric_id, "client_submission_id": uuid.uuid4(),
                "ranking": ranking, "scores": {c: {k: self.rng.randint(1, 5) for k in self.criteria} for c in pair},
                "flags": {}, "listened": {a: 1.0, b: 1.0}, "time_spent_ms": 20000}

    def grow(self, judgments: int) -> None:
        """Add items (2 candidates each) and OVERLAP judgments per item up to `judgments` in total."""
        from django.db import connection

        from auralign.annotation.models import Assignment, Item, ItemCandidate, Judgment
        from auralign.generation.models import Candidate

        new_items = -(-judgments // OVERLAP) - self.items
        if new_items <= 0:
            return
        with connection.cursor() as cursor:
            ids = {m: _next_id(cursor, m) for m in (Candidate, Item, Assignment, Judgment)}
            d = len(self.dialogue_ids)
            plan = [(self.items + n, ids[Item] + n) for n in range(new_items)]  # (item number, item id)
            cands = {  # item id -> [(candidate id, candidate uuid) per policy]
                item_id: [(ids[Candidate] + 2 * (number - self.items) + p, str(uuid.uuid4())) for p in range(len(self.policies))]
                for number, item_id in plan
            }
            _copy(cursor, Candidate, (
                {"id": cid, "uuid": cuuid, "campaign_id": self.campaign.pk, "dialogue_id": self.dialogue_ids[number % d],
                 "policy_id": self.policies[p].pk, "sample_index": number // d, "reasoning": f"thinking about item {number}",
                 "reply_text": f"Reply {p} to item {number}: here is what I would say about it.",
                 "params": {}, "stats": {}, "degradation": {}}
                for number, item_id in plan for p, (cid, cuuid) in enumerate(cands[item_id])
            ))
            _copy(cursor, Item, ({"id": item_id, "campaign_id": self.campaign.pk, "dialogue_id": self.dialogue_ids[number % d],
                                  "overlap": OVERLAP, "slots_used": OVERLAP, "judgment_count": OVERLAP}
                                 for number, item_id in plan))
            _copy(cursor, ItemCandidate, ({"item_id": item_id, "candidate_id": cid, "position": pos}
                                          for item_id, pair in cands.items() for pos, (cid, _) in enumerate(pair)))
            now = datetime.now(UTC)

            def judged():  # (row number, item id, candidate uuids, annotator), streamed: the seeder stays small too
                n = 0
                for number, item_id in plan:
                    pair = [uuid for _, uuid in cands[item_id]]
                    for r in range(OVERLAP):
                        yield n, item_id, pair, self.annotators[(number * OVERLAP + r) % ANNOTATORS]
                        n += 1

            _copy(cursor, Assignment, ({"id": ids[Assignment] + n, "item_id": item_id, "campaign_id": self.campaign.pk,
                                        "annotator_id": annotator, "display_order": pair, "status": "submitted",
                                        "expires_at": now, "finished_at": now} for n, item_id, pair, annotator in judged()))
            _copy(cursor, Judgment, (self._judgment(ids[Judgment] + n, ids[Assignment] + n, item_id, pair, annotator)
                                     for n, item_id, pair, annotator in judged()))
            _reset_sequences(cursor, [Candidate, Item, ItemCandidate, Assignment, Judgment])
            cursor.execute("ANALYZE")
        self.items += new_items


def _peak_rss_mb() -> int:
    """This process's peak RSS (VmHWM: unlike getrusage's ru_maxrss it does not carry over the
    parent's peak across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def child(snapshot_id: int) -> None:
    """Run one export in this (fresh) process; print its figures as JSON."""
    from rlhf_export.services import snapshot_run

    start, cpu = time.perf_counter(), time.process_time()
    snapshot = snapshot_run(snapshot_id=snapshot_id)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    if snapshot.status != "succeeded":
        raise SystemExit(f"export failed: {snapshot.error}")
    print(json.dumps({
        "judgments": snapshot.watermark["judgment_count"], "rows": snapshot.rows, "seconds": round(seconds, 2),
        "judgments_per_s": round(snapshot.watermark["judgment_count"] / seconds),
        "peak_rss_mb": _peak_rss_mb(),
        # this process's CPU time (all threads; not PostgreSQL's): on a busy shared machine,
        # judgments per CPU second tell the code's speed apart from the machine's load
        "cpu_seconds": round(cpu, 2), "judgments_per_cpu_s": round(snapshot.watermark["judgment_count"] / cpu),
        "bytes": sum(f["bytes"] for f in snapshot.files),
    }))


def measure(seeder: Seeder, env: dict) -> dict:
    from rlhf_export.services import snapshot_create

    snapshot = snapshot_create(user=seeder.trainer, campaigns=[seeder.campaign], kind="pairwise", enqueue=False, formats=["parquet"])
    result = subprocess.run([sys.executable, __file__, "--child", str(snapshot.pk)], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"export child failed: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5k and 20k judgments (well under a minute)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    base_url = os.environ.get("DATABASE_URL", "")
    if args.child is not None:
        _django(base_url, os.environ["AURALIGN_MEDIA_ROOT"])
        return child(args.child)
    if not base_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("error: set DATABASE_URL to a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/auralign")
    sizes = [5_000, 20_000] if args.quick else [100_000, 1_000_000]
    dialogues = 1_000 if args.quick else 20_000

    import psycopg

    parts = urlsplit(base_url)
    bench_db = f"{(parts.path.lstrip('/') or 'auralign')}_bench_export"
    admin_url = parts._replace(path="/postgres").geturl()
    bench_url = parts._replace(path=f"/{bench_db}").geturl()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{bench_db}"')
    media = tempfile.mkdtemp(prefix="bench-export-")
    results = []
    try:
        _django(bench_url, media)
        from django.core.management import call_command
        from django.db import connections

        t = time.perf_counter()
        call_command("migrate", verbosity=0)
        seeder = Seeder(dialogues)
        print(f"database {bench_db} migrated and seeded with {dialogues} dialogues in {time.perf_counter() - t:.1f}s")
        env = {**os.environ, "DATABASE_URL": bench_url, "AURALIGN_MEDIA_ROOT": media}
        for size in sizes:
            t = time.perf_counter()
            seeder.grow(size)
            print(f"seeded to {size} judgments with COPY in {time.perf_counter() - t:.1f}s")
            figures = measure(seeder, env)
            results.append(figures)
            print(f"{figures['judgments']:>9} judgments -> {figures['rows']} pairwise rows in {figures['seconds']}s: "
                  f"{figures['judgments_per_s']} judgments/s ({figures['judgments_per_cpu_s']} per CPU second), "
                  f"peak RSS {figures['peak_rss_mb']} MB, load average {os.getloadavg()[0]:.1f}")
        connections.close_all()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
        import shutil

        shutil.rmtree(media, ignore_errors=True)
    print(json.dumps({
        "bench": "export", "quick": args.quick, "kind": "pairwise", "format": "parquet",
        "results": results,
        "min_judgments_per_s": min(r["judgments_per_s"] for r in results),
        "max_peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        "rss_growth_mb": results[-1]["peak_rss_mb"] - results[0]["peak_rss_mb"],
        "targets": {"judgments_per_s": 50_000, "peak_rss_mb": 1024},
    }))


if __name__ == "__main__":
    main()
