"""A marked sheet's report for the student: the same content as JSON, HTML
(Jinja2, autoescaped) and PDF (fpdf2, the generator of the sheets)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, select_autoescape

from backend.marking.sheet_pdf import latin1, new_pdf

_ENVIRONMENT = Environment(autoescape=select_autoescape(default=True, default_for_string=True))

_HTML = _ENVIRONMENT.from_string(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ guide.title }} - {{ student_label }}</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; margin: 2em; color: #111; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
table { border-collapse: collapse; width: 100%; margin-top: 1em; }
th, td { border: 1px solid #999; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
th { background: #eee; }
.score { font-size: 1.2em; margin-top: 0.6em; }
.flags { color: #a00; }
@media print { body { margin: 0; } }
</style>
</head>
<body>
<h1>{{ guide.title }}</h1>
{% if guide.subject %}<div>{{ guide.subject }}</div>{% endif %}
<div>Student: {{ student_label }}</div>
<div class="score">Score: <strong>{{ fmt(score.awarded) }} / {{ fmt(score.max) }}</strong>
 ({{ fmt(score.percentage) }} %) &mdash; {{ "passed" if score.passed else "not passed" }}</div>
{% if requires_review %}
<div class="flags">Some answers are being checked by a person.</div>
{% endif %}
<table>
<thead><tr><th>Question</th><th>Answer</th><th>Marks</th><th>Feedback</th><th>Flags</th></tr></thead>
<tbody>
{% for q in questions %}
<tr>
<td>{{ q.id }}</td>
<td>{{ answer(q.answer) }}</td>
<td>{{ fmt(q.awarded) }} / {{ fmt(q.max_marks) }}</td>
<td>{{ q.feedback }}{% if q.overridden %} (marked by hand){% endif %}</td>
<td class="flags">{{ q.flags | join(", ") }}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% if marked_at %}<p><small>Marked {{ marked_at }}</small></p>{% endif %}
</body>
</html>
"""
)


def format_number(value: Any) -> str:
    if value is None:
        return "-"
    number = float(value)
    return f"{number:g}" if number != int(number) else str(int(number))


def format_answer(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(format_answer(item) for item in value) or "-"
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def student_label(report: dict[str, Any]) -> str:
    name, number = report.get("student_name"), report.get("student_id")
    if name and number:
        return f"{name} ({number})"
    return str(name or number or "unknown")


def render_html(report: dict[str, Any]) -> str:
    return _HTML.render(
        **report, student_label=student_label(report), fmt=format_number, answer=format_answer
    )


def render_pdf(report: dict[str, Any]) -> bytes:
    pdf = new_pdf()
    pdf.set_auto_page_break(True, margin=40)
    pdf.set_margins(48, 48, 48)
    pdf.add_page()
    guide, score = report["guide"], report["score"]
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(0, 20, latin1(guide["title"]), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    if guide.get("subject"):
        pdf.cell(0, 16, latin1(guide["subject"]), new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 16, latin1(f"Student: {student_label(report)}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 12)
    verdict = "passed" if score["passed"] else "not passed"
    pdf.cell(
        0,
        20,
        f"Score: {format_number(score['awarded'])} / {format_number(score['max'])} "
        f"({format_number(score['percentage'])} %) - {verdict}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    if report.get("requires_review"):
        pdf.set_font("Helvetica", "I", 10)
        pdf.cell(
            0, 14, "Some answers are being checked by a person.", new_x="LMARGIN", new_y="NEXT"
        )
    pdf.ln(6)
    pdf.set_font("Helvetica", "", 9)
    with pdf.table(col_widths=(40, 110, 60, 220, 70), text_align="LEFT") as table:
        table.row(["Question", "Answer", "Marks", "Feedback", "Flags"])
        for question in report["questions"]:
            feedback = question["feedback"] + (
                " (marked by hand)" if question["overridden"] else ""
            )
            table.row(
                [
                    latin1(str(question["id"])),
                    latin1(format_answer(question["answer"])[:300]),
                    f"{format_number(question['awarded'])} / "
                    f"{format_number(question['max_marks'])}",
                    latin1(feedback[:1000]),
                    ", ".join(question["flags"]),
                ]
            )
    return bytes(pdf.output())
