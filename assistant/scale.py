"""Scale benchmark: `python -m assistant bench --scale N` adds a plan's documents to the toolkit.

It writes generated policy manuals (vocabulary in ``data/scale_documents.yaml``) into a temporary
corpus until the documents hold about N times the toolkit's passages, indexes the toolkit alone
and the toolkit with the documents, and prints, from one run: reply p50/p95 at 1x and Nx and
their ratio to one bare query embedding at 1x, ingest passages/s, the time to re-index after one
new document, start-up time and resident memory of each (each opened in its own process), and
the evaluation sets' pass rate with and without the documents.
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from assistant.config import OVERVIEW_FILE, TOOLKIT_FILE, Settings

VOCABULARY = Path(__file__).parent / "data" / "scale_documents.yaml"
# The document the benchmark adds last, to time an incremental re-index and to check that a
# question about a plan's own document finds it among thousands of others.
NEW_DOCUMENT = "respite-extension-policy.md"
NEW_SECTION = (
    "## Extended respite for caregivers\n\n"
    "From next year the plan authorizes up to 21 nights of overnight respite in a licensed "
    "facility for family caregivers of members in the serious illness program. The care "
    "manager submits the request through the caregiver services queue.\n"
)
NEW_QUESTION = "How many nights of overnight respite does our plan authorize for family caregivers?"


def _sentence(rng: random.Random, vocab: dict[str, Any], terms: list[str]) -> str:
    term = rng.choice(terms)
    return (
        f"{rng.choice(vocab['actors'])} {rng.choice(vocab['verbs'])} {term} "
        f"{rng.choice(vocab['conditions'])}."
    )


def _manual(rng: random.Random, vocab: dict[str, Any], number: int) -> tuple[str, str, int]:
    """(file name, markdown text, sections) of one generated policy manual."""
    plan = rng.choice(vocab["plans"])
    kind = rng.choice(vocab["documents"])
    lines = [f"# {plan}: {kind} (volume {number})", ""]
    sections = 0
    low, high = vocab["sections_per_chapter"]
    for chapter_no, chapter in enumerate(vocab["chapters"], start=1):
        lines += [f"## {chapter_no}. {chapter['title']}", ""]
        names = list(chapter["sections"])
        rng.shuffle(names)
        for section_no, name in enumerate(names[: rng.randint(low, high)], start=1):
            lines += [f"### {chapter_no}.{section_no} {name}", ""]
            for _ in range(rng.randint(*vocab["paragraphs_per_section"])):
                count = rng.randint(*vocab["sentences_per_paragraph"])
                body = [_sentence(rng, vocab, chapter["terms"]) for _ in range(count)]
                body.append(rng.choice(vocab["closers"]))
                lines += [" ".join(body), ""]
            sections += 1
    slug = kind.lower().replace(" ", "-")
    return f"{slug}-{number:04d}.md", "\n".join(lines), sections


def generate_documents(folder: Path, passages: int, *, seed: int = 7) -> int:
    """Write policy manuals into ``folder`` until they hold about ``passages`` passages.

    Returns the number of documents written. The same seed writes the same files.
    """
    vocab = yaml.safe_load(VOCABULARY.read_text("utf-8"))
    rng = random.Random(seed)
    written = total = 0
    while total < passages:
        written += 1
        name, text, sections = _manual(rng, vocab, written)
        (folder / name).write_text(text, "utf-8")
        total += sections
    return written


def new_document(seed: int = 11) -> str:
    """A policy of a dozen sections with one distinctive section about overnight respite."""
    vocab = yaml.safe_load(VOCABULARY.read_text("utf-8"))
    vocab["chapters"] = [c for c in vocab["chapters"] if c["title"].startswith("Caregiver")]
    _, text, _ = _manual(random.Random(seed), vocab, 1)
    return f"# Respite extension policy\n\n{NEW_SECTION}\n{text.split(chr(10), 2)[2]}"


# Each child process reports its seconds and peak resident memory as one JSON line.
_OPEN = """
from assistant.chat import Assistant
bot = Assistant.from_settings(settings)
bot.ask("What should we do first on payment?")
"""
_INGEST = """
from assistant.indexer import build_index
summary = build_index(settings, show_progress=False)
extra = {"embedded": summary.embedded, "passages": summary.passages, "mode": summary.mode}
"""
_CHILD = """
import json, resource, sys, time
started = time.perf_counter()
from assistant.config import OVERVIEW_FILE, TOOLKIT_FILE, Settings
settings = Settings.model_validate_json(sys.argv[1])
extra = {{}}
{body}
print(json.dumps({{
    "seconds": time.perf_counter() - started,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    **extra,
}}))
"""


def _child(body: str, settings: Settings) -> dict[str, Any]:
    """Run ``body`` in a fresh Python process (as a user's command would run)."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD.format(body=body), settings.model_dump_json()],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _pass_rate(bot: Any) -> float:
    """Strict pass rate over the two gated evaluation sets."""
    from evals.harness import observe_assistant, run_system
    from evals.questions import load_questions

    root = Path(__file__).resolve().parent.parent / "evals"
    questions = [
        question
        for path in (root / "questions.yaml", root / "samples" / "holdout.yaml")
        for question in load_questions(path)
    ]
    run = run_system(
        "ours",
        questions,
        lambda q: observe_assistant(bot, q),
        valid_ids=bot.passage_ids(),
        keep_answers=False,
    )
    return run.summary.pass_rate


def _corpus(root: Path, source: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir()
    for file_name in (TOOLKIT_FILE, OVERVIEW_FILE):
        shutil.copy(source / file_name, folder / file_name)
    return folder


def _settings(base: Settings, root: Path, corpus: Path, label: str) -> Settings:
    return base.model_copy(
        update={
            "corpus_dir": corpus,
            "chroma_path": root / f"index-{label}",
            "collection": f"{base.collection}-scale-{label}"
            if base.chroma_url
            else base.collection,
            "query_model": base.resolved_query_model,
        }
    )


def _drop_server_collections(settings: Settings) -> None:
    """Remove the run's collections from a Chroma server (an embedded index went with root)."""
    if not settings.chroma_url:
        return
    from assistant.store import connect

    client = connect(settings, create=False)
    prefix = f"{settings.collection}-scale-"
    for collection in client.list_collections():
        if collection.name.startswith(prefix):
            client.delete_collection(collection.name)


def _latency(small: Any, large: Any, rounds: int) -> dict[str, list[float]]:
    """Reply times of both assistants and the bare embedding, question by question in turn."""
    from assistant.bench import questions, time_ms

    sample = questions(rounds)
    for bot in (small, large):
        for question, history, profile in sample[:5]:  # warm caches and first-call costs
            bot.ask(question, history=history, profile=profile)
    times: dict[str, list[float]] = {"1x": [], "Nx": [], "embed": []}
    for question, history, profile in sample:
        for label, bot in (("1x", small), ("Nx", large)):
            bot.retriever.clear_cache()  # each timing starts from a new question
            times[label].append(
                time_ms(partial(bot.ask, question, history=history, profile=profile))
            )
        small.retriever.clear_cache()
        times["embed"].append(time_ms(partial(small.embeddings.embed_query, question)))
    return times


def run_scale_bench(
    settings: Settings, *, scale: int, rounds: int = 100, keep: bool = False
) -> int:
    """Index the toolkit alone and with ``scale`` times its passages in generated documents;
    print latency, ingest, start-up and memory at both sizes (see the module docstring)."""
    from assistant.chat import Assistant
    from assistant.passages import toolkit_passages
    from assistant.toolkit import load_toolkit

    toolkit_size = len(toolkit_passages(load_toolkit(settings.corpus_dir)))
    root = Path(tempfile.mkdtemp(prefix="plan-guide-scale-"))
    try:
        small_corpus = _corpus(root, settings.corpus_dir, "corpus-1x")
        large_corpus = _corpus(root, settings.corpus_dir, f"corpus-{scale}x")
        files = generate_documents(large_corpus, (scale - 1) * toolkit_size)
        small = _settings(settings, root, small_corpus, "1x")
        large = _settings(settings, root, large_corpus, f"{scale}x")
        print(f"Generated {files} documents; indexing (this takes a while at large sizes)...")
        ingest_small = _child(_INGEST, small)
        ingest_large = _child(_INGEST, large)
        open_small, open_large = _child(_OPEN, small), _child(_OPEN, large)
        (large_corpus / NEW_DOCUMENT).write_text(new_document(), "utf-8")
        update = _child(_INGEST, large)
        bots = Assistant.from_settings(small), Assistant.from_settings(large)
        times = _latency(*bots, rounds)
        reply = bots[1].ask(NEW_QUESTION)
        found = any(c.source == NEW_DOCUMENT for c in reply.citations)
        rates = [_pass_rate(bot) for bot in bots]
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
            _drop_server_collections(settings)
    _report(
        scale=scale,
        sizes=(int(ingest_small["passages"]), int(ingest_large["passages"])),
        ingests=(ingest_small, ingest_large, update),
        opens=(open_small, open_large),
        times=times,
        found=found,
        rates=rates,
    )
    return 0


def _report(
    *,
    scale: int,
    sizes: tuple[int, int],
    ingests: tuple[dict[str, Any], ...],
    opens: tuple[dict[str, Any], ...],
    times: dict[str, list[float]],
    found: bool,
    rates: list[float],
) -> None:
    from assistant.bench import percentile

    small, large = times["1x"], times["Nx"]
    p50 = [statistics.median(small), statistics.median(large)]
    p95 = [percentile(small, 95), percentile(large, 95)]
    embed50 = statistics.median(times["embed"])
    ingest_small, ingest_large, update = ingests
    label = f"{scale}x"
    rows = [
        ("passages", f"{sizes[0]:,}", f"{sizes[1]:,}", f"{sizes[1] / sizes[0]:.0f}x"),
        ("reply p50 ms", f"{p50[0]:.1f}", f"{p50[1]:.1f}", f"{p50[1] / p50[0]:.2f}x"),
        ("reply p95 ms", f"{p95[0]:.1f}", f"{p95[1]:.1f}", f"{p95[1] / p95[0]:.2f}x"),
        (
            "reply p50 / bare embedding p50 at 1x",
            f"{p50[0] / embed50:.2f}",
            f"{p50[1] / embed50:.2f}",
            "",
        ),
        (
            "start-up s (open + first answer)",
            f"{opens[0]['seconds']:.1f}",
            f"{opens[1]['seconds']:.1f}",
            f"{opens[1]['seconds'] / opens[0]['seconds']:.2f}x",
        ),
        (
            "resident memory MB after start-up",
            f"{opens[0]['rss_mb']:.0f}",
            f"{opens[1]['rss_mb']:.0f}",
            f"{opens[1]['rss_mb'] / opens[0]['rss_mb']:.2f}x",
        ),
        (
            "ingest from empty s (passages/s)",
            f"{ingest_small['seconds']:.1f} ({ingest_small['embedded'] / ingest_small['seconds']:.0f}/s)",
            f"{ingest_large['seconds']:.1f} ({ingest_large['embedded'] / ingest_large['seconds']:.0f}/s)",
            "",
        ),
        (
            "ingest peak memory MB",
            f"{ingest_small['rss_mb']:.0f}",
            f"{ingest_large['rss_mb']:.0f}",
            "",
        ),
        ("evaluation sets pass rate", f"{rates[0]:.3f}", f"{rates[1]:.3f}", ""),
    ]
    print(
        f"bare query embedding: p50 {embed50:.1f} ms, p95 {percentile(times['embed'], 95):.1f} ms"
    )
    print(f"| | 1x | {label} | {label} / 1x |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(
        f"adding one document ({NEW_DOCUMENT}, {update['embedded']} passages) to the {label} "
        f"index: `python ingest.py` took {update['seconds']:.1f} s ({update['mode']})"
    )
    print(f"a question about that document finds it: {'yes' if found else 'NO'}")
