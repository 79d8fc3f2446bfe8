"""`sheet.pdf`: draws a `SheetLayout` as vector PDF (fpdf2), mark for mark
where `sheet.json` says. Also the small text-PDF helper the reports use."""

from __future__ import annotations

from fpdf import FPDF

from backend.marking.sheet_layout import SheetLayout

GREY = 150
LETTER_GREY = 165


def latin1(text: str) -> str:
    """The core PDF fonts cover Latin-1; anything else prints as '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


def new_pdf() -> FPDF:
    pdf = FPDF(orientation="P", unit="pt", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_creator("Dossier marking")
    pdf.set_compression(True)
    return pdf


def render_sheet(layout: SheetLayout, *, title: str) -> bytes:
    pdf = new_pdf()
    pdf.set_title(latin1(title))
    for page in range(1, layout.pages + 1):
        pdf.add_page()
        _draw_page(pdf, layout, page)
    return bytes(pdf.output())


def _draw_page(pdf: FPDF, layout: SheetLayout, page: int) -> None:
    pdf.set_fill_color(0)
    pdf.set_draw_color(0)
    for fiducial in (f for f in layout.fiducials if f.page == page):
        pdf.rect(fiducial.x, fiducial.y, fiducial.size, fiducial.size, style="F")
    for cell in (c for c in layout.code_cells if c.page == page and c.filled):
        pdf.rect(cell.x, cell.y, cell.size, cell.size, style="F")
    pdf.set_line_width(0.6)
    for line_page, x1, y1, x2, y2 in layout.lines:
        if line_page == page:
            pdf.line(x1, y1, x2, y2)
    for label in (item for item in layout.labels if item.page == page):
        pdf.set_font("Helvetica", "B" if label.bold else "", label.size)
        pdf.set_text_color(GREY if label.grey else 0)
        pdf.set_xy(label.x, label.y)
        pdf.cell(label.width, label.size + 2, latin1(label.text), align=label.align)
    pdf.set_line_width(0.8)
    pdf.set_font("Helvetica", "", 6.5)
    pdf.set_text_color(LETTER_GREY)
    for bubble in (b for b in layout.bubbles if b.page == page):
        pdf.circle(bubble.x, bubble.y, bubble.r, style="D")
        _centre_text(pdf, bubble.x, bubble.y, bubble.option)
    for id_bubble in (b for b in layout.id_bubbles if b.page == page):
        pdf.circle(id_bubble.x, id_bubble.y, id_bubble.r, style="D")
        _centre_text(pdf, id_bubble.x, id_bubble.y, str(id_bubble.digit))
    pdf.set_line_width(0.8)
    for box in (b for b in layout.boxes if b.page == page):
        pdf.rect(box.x, box.y, box.width, box.height, style="D")
    pdf.set_text_color(0)


def _centre_text(pdf: FPDF, x: float, y: float, text: str) -> None:
    pdf.set_xy(x - 6, y - 4)
    pdf.cell(12, 8, text, align="C")
