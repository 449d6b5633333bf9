"""Evaluation harness: a fixed question set, scored against the assistant and a naive baseline.

    python -m evals run                      # evals/questions.yaml -> evals/reports/latest.*
    python -m evals diff OLD.json NEW.json   # which questions changed result

The stages, one module each: ``questions`` (load and validate a set), ``phrases`` (the
matching rule), ``baseline`` (the tutorial RAG we compare against), ``metrics`` (per question
and overall), ``harness`` (the run loop), ``report`` (markdown, JSON, PNG), ``diff``, ``gate``
(the floors ``make test`` enforces).
"""

from __future__ import annotations
