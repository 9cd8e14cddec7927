"""A report (`farebox.analytics.report_data`) as a file: CSV (one row per value: section, title, item, metric,
value), XLSX (a sheet per section, its numbers as numbers, a bar or line chart beside each breakdown, trend and top
list; openpyxl) or PDF (the sections' tables, each with its chart; reportlab). Money stays exact in every cell and
table; a chart plots its column as floats, for the eye only.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from enum import StrEnum
from typing import Any

from farebox.analytics.report_data import Report
from farebox.analytics.report_data import Table as Section

__all__ = ["ReportFormat", "render"]

_MAX_CHARTED = 31
"""The most rows a chart draws (a top list's, a month of days); the table holds them all."""
# openpyxl and reportlab (about 37 MB resident together) are imported by the first XLSX or PDF made, in the
# functions that make them: a server that never renders one never holds them (`tests/e2e/test_serve_imports.py`).


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"
    EXCEL = "excel"
    PDF = "pdf"

    @property
    def media_type(self) -> str:
        return {
            ReportFormat.JSON: "application/json",
            ReportFormat.CSV: "text/csv; charset=utf-8",
            ReportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ReportFormat.EXCEL: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ReportFormat.PDF: "application/pdf",
        }[self]

    @property
    def suffix(self) -> str:
        return "xlsx" if self is ReportFormat.EXCEL else self.value


def _period(report: Report) -> str:
    window = report.window
    return f"{window.first.isoformat()} to {window.last.isoformat()} ({window.tz.key})"


def _text(value: Any) -> str:
    if value is None:
        return ""
    return format(value.normalize(), "f") if isinstance(value, Decimal) else str(value)


def render(report: Report, fmt: ReportFormat) -> bytes:
    """The report as `fmt` (not JSON: the route answers that in its envelope)."""
    if fmt is ReportFormat.CSV:
        return _csv(report)
    if fmt is ReportFormat.PDF:
        return _pdf(report)
    return _xlsx(report)


def _csv(report: Report) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("section", "title", "item", "metric", "value"))
    for section in report.tables:
        for row in section.rows:
            for column, value in zip(section.columns[1:], row[1:], strict=True):
                item = "" if section.kind == "summary" else row[0]
                metric = row[0] if section.kind == "summary" else column
                writer.writerow((section.kind.value, section.title, item, metric, _text(value)))
    return text.getvalue().encode()


def _cell(value: Any) -> Any:
    """A value as openpyxl writes it: numbers as numbers (a Decimal exactly), None as an empty cell."""
    return value if isinstance(value, int | Decimal | str) or value is None else str(value)


def _xlsx(report: Report) -> bytes:
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, LineChart, Reference
    from openpyxl.styles import Font

    book = Workbook()
    cover = book.active
    assert cover is not None
    cover.title = "Report"
    cover.append([report.name])
    cover["A1"].font = Font(bold=True, size=14)
    cover.append(["Period", _period(report)])
    cover.append(["Account", report.account_id])
    cover.append(["Generated", report.generated_at.isoformat()])
    used = {"Report"}
    for section in report.tables:
        title = section.title[:31]
        while title in used:
            title = f"{title[:28]} {len(used)}"
        used.add(title)
        sheet = book.create_sheet(title)
        sheet.append(list(section.columns))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in section.rows:
            sheet.append([_cell(value) for value in row])
        if section.chart is None or not section.rows:
            continue
        last = min(len(section.rows), _MAX_CHARTED) + 1
        chart = BarChart() if section.chart == "bar" else LineChart()
        chart.title = f"{section.title}: {section.columns[section.charted]}"
        chart.height, chart.width = 8, 16
        data = Reference(sheet, min_col=section.charted + 1, min_row=1, max_row=last)
        chart.add_data(data, titles_from_data=True)
        chart.set_categories(Reference(sheet, min_col=1, min_row=2, max_row=last))
        sheet.add_chart(chart, f"{chr(ord('A') + len(section.columns) + 1)}2")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _chart(section: Section) -> Any:
    """A reportlab drawing of the section's charted column."""
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.charts.linecharts import HorizontalLineChart
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib import colors
    from reportlab.lib.units import mm

    rows = section.rows[:_MAX_CHARTED]
    values = [float(row[section.charted] or 0) for row in rows]
    labels = [str(row[0])[:12] or "(none)" for row in rows]
    drawing = Drawing(170 * mm, 60 * mm)
    chart = VerticalBarChart() if section.chart == "bar" else HorizontalLineChart()
    chart.x, chart.y, chart.width, chart.height = 15 * mm, 12 * mm, 150 * mm, 42 * mm
    chart.data = [values]
    chart.categoryAxis.categoryNames = labels
    chart.categoryAxis.labels.angle = 30
    chart.categoryAxis.labels.boxAnchor = "ne"
    chart.categoryAxis.labels.fontSize = 6
    chart.valueAxis.valueMin = 0
    if section.chart == "bar":
        chart.bars[0].fillColor = colors.HexColor("#4C78A8")
    else:
        chart.lines[0].strokeColor = colors.HexColor("#4C78A8")
    drawing.add(chart)
    return drawing


def _pdf(report: Report) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    out = io.BytesIO()
    document = SimpleDocTemplate(out, pagesize=A4, title=report.name, author="farebox")
    story: list[Any] = [
        Paragraph(report.name, styles["Title"]),
        Paragraph(f"Period: {_period(report)}", styles["Normal"]),
        Paragraph(f"Account: {report.account_id}", styles["Normal"]),
        Spacer(1, 6 * mm),
    ]
    for section in report.tables:
        heading: list[Any] = [Paragraph(section.title, styles["Heading2"])]
        if section.chart is not None and section.rows:
            heading += [Paragraph(section.columns[section.charted], styles["Italic"]), _chart(section)]
        story.append(KeepTogether(heading))
        cells = [list(section.columns), *([_text(value) for value in row] for row in section.rows)]
        table = Table(cells, repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                    ("FONTSIZE", (0, 0), (-1, -1), 8),
                    ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E8EEF6")),
                    ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
                ]
            )
        )
        story += [table, Spacer(1, 6 * mm)]
    document.build(story)
    return out.getvalue()
