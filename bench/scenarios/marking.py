"""Issue 10: answer-sheet marking throughput of one worker process.

* `marking-render-floor` (baseline): rendering a one-page sheet PDF to a grey
  200 dpi image with pdfium, nothing else: the least any reader must spend.
* `marking-omr`: a filled, photographed-and-degraded sheet stored as a PDF
  scan (JPEG page): render at 200 dpi, find the fiducials, correct the
  perspective, read 40 questions and an 8-digit student number, score.
  Target: at least 5 sheets/s.
* `marking-typed`: typed answers (text already extracted, so no OCR) of the
  same 40-question guide: split the lines, parse, score. Target: at least
  100 sheets/s.

All run in the bench process on one thread, for `--duration` seconds each.
"""

from __future__ import annotations

import asyncio
import io
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from backend.marking import omr
from backend.marking.guide import Question
from backend.marking.scoring import score_question
from backend.marking.sheet_layout import SheetLayout, compute_layout
from backend.marking.sheet_pdf import render_sheet
from backend.marking.typed_answers import split_answers
from bench import marking_synth as synth
from bench.context import BenchContext
from bench.registry import CustomScenario, Measurement, RunOptions, register

DPI = 200
QUESTIONS = 40
OMR_TARGET = 5.0
TYPED_TARGET = 100.0


@dataclass(frozen=True, slots=True)
class Material:
    questions: list[Question]
    layout: SheetLayout
    pdf: bytes
    scan: bytes
    text: str
    filled: synth.Filled


def _material(context: BenchContext) -> Material:
    found = context.state.get("marking.material")
    if isinstance(found, Material):
        return found
    questions = synth.mixed_guide(QUESTIONS, seed=1)
    layout = compute_layout(questions, title="Bench")
    pdf = render_sheet(layout, title="Bench")
    rng = random.Random(1)
    filled = synth.Filled(synth.random_marks(questions, rng), "12345678")
    (page,) = synth.fill(synth.render_pages(pdf, DPI), layout, filled, DPI, rng)
    photo = synth.degrade(page, synth.Degradation.random(rng), seed=1)
    scan = io.BytesIO()
    photo.convert("RGB").save(scan, "PDF", resolution=DPI, quality=80)
    lines = ["Name: Bench", "Student number: 12345678"]
    for question in questions:
        answer = {"mcq": "B", "multi": "A, C", "true_false": "true"}.get(question.type, "")
        lines.append(f"{question.id}. {answer or 'light and water: 9.81'}")
    material = Material(questions, layout, pdf, scan.getvalue(), "\n".join(lines), filled)
    context.state["marking.material"] = material
    return material


def _repeat(work: Callable[[], object], duration: float) -> tuple[int, float, float]:
    """(runs, wall seconds, CPU seconds of this process): on a shared machine
    the CPU time per run says what one worker costs when it has a core."""
    work()  # warm
    count, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < duration:
        work()
        count += 1
    return count, time.perf_counter() - started, time.process_time() - cpu


async def render_floor(context: BenchContext, options: RunOptions) -> Measurement:
    pdf = _material(context).pdf
    count, elapsed, cpu = await asyncio.to_thread(
        _repeat, lambda: omr.pages_from_bytes(pdf, dpi=DPI), options.duration
    )
    return Measurement(
        throughput=count / elapsed,
        unit="pages/s",
        count=count,
        duration_s=elapsed,
        details={
            "dpi": DPI,
            "ms_per_page": round(1000 * elapsed / count, 1),
            "cpu_ms_per_page": round(1000 * cpu / count, 1),
        },
    )


async def omr_sheets(context: BenchContext, options: RunOptions) -> Measurement:
    material = _material(context)
    scan, layout, questions, filled = (
        material.scan,
        material.layout,
        material.questions,
        material.filled,
    )

    def once() -> object:
        pages = omr.pages_from_bytes(scan, dpi=DPI)
        reading = omr.read_sheet(pages, layout, questions)
        return [score_question(q, reading.responses[q.id]) for q in questions]

    reading = omr.read_sheet(omr.pages_from_bytes(scan, dpi=DPI), layout, questions)
    right, total = synth.bubble_accuracy(
        questions,
        filled,
        reading.fills,
        omr.FILLED,
        omr.EMPTY,
    )
    count, elapsed, cpu = await asyncio.to_thread(_repeat, once, options.duration)
    rate = count / elapsed
    return Measurement(
        throughput=rate,
        unit="sheets/s",
        count=count,
        duration_s=elapsed,
        details={
            "dpi": DPI,
            "questions": QUESTIONS,
            "ms_per_sheet": round(1000 * elapsed / count, 1),
            "cpu_ms_per_sheet": round(1000 * cpu / count, 1),
            "target_sheets_per_s": OMR_TARGET,
            "meets_target": rate >= OMR_TARGET,
            "bubbles_right": f"{right}/{total}",
        },
    )


async def typed_sheets(context: BenchContext, options: RunOptions) -> Measurement:
    material = _material(context)
    text, questions = material.text, material.questions

    def once() -> object:
        typed = split_answers(text, questions)
        return [score_question(q, typed.responses[q.id]) for q in questions]

    count, elapsed, cpu = await asyncio.to_thread(_repeat, once, options.duration)
    rate = count / elapsed
    return Measurement(
        throughput=rate,
        unit="sheets/s",
        count=count,
        duration_s=elapsed,
        details={
            "questions": QUESTIONS,
            "cpu_ms_per_sheet": round(1000 * cpu / count, 3),
            "target_sheets_per_s": TYPED_TARGET,
            "meets_target": rate >= TYPED_TARGET,
        },
    )


register(
    CustomScenario(
        "marking-render-floor",
        render_floor,
        description=f"baseline: one sheet PDF page rendered to a grey {DPI} dpi image (pdfium)",
    ),
    CustomScenario(
        "marking-omr",
        omr_sheets,
        baseline="marking-render-floor",
        description=f"a degraded {QUESTIONS}-question scan (PDF) rendered at {DPI} dpi, read "
        f"and scored; target >= {OMR_TARGET:g} sheets/s",
    ),
    CustomScenario(
        "marking-typed",
        typed_sheets,
        baseline="marking-render-floor",
        description=f"typed answers of {QUESTIONS} questions split, parsed and scored (no OCR); "
        f"target >= {TYPED_TARGET:g} sheets/s",
    ),
)
