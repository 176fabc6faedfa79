/**
 * Bundles exported before the report was rendered with React still pass `export --verify`'s page check, and the
 * fallback comparison lets no edit through. The fixture is a real report.json with the report.html and charts the
 * string-template renderer wrote for it (a v2 with a previous production version, a document body with a line
 * break and an apostrophe, a run name containing "<x>", and a failed content check).
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ReportJson } from "@/server/audit/report/bundle-layout";
import { markupTokens, sameMarkup } from "@/server/audit/report/markup-equivalence";
import { renderReportCharts } from "@/server/audit/report/render/report-charts";
import { renderReportHtml } from "@/server/audit/report/render/report-html";

const FIXTURE = path.join(__dirname, "fixtures", "pre-react-report");
const report = JSON.parse(fs.readFileSync(path.join(FIXTURE, "report.json"), "utf8")) as ReportJson;
const oldPage = fs.readFileSync(path.join(FIXTURE, "report.html"), "utf8");
const charts = renderReportCharts(report.facts);
const newPage = renderReportHtml(report.facts, report.integrity, charts, report.generatedAt);

describe("report pages serialised before the React renderer", () => {
  it("differ in bytes but are the same markup: page and every chart", () => {
    expect(oldPage).not.toBe(newPage);
    expect(sameMarkup(oldPage, newPage)).toBe(true);
    expect(charts.length).toBe(4);
    for (const c of charts) {
      const old = fs.readFileSync(path.join(FIXTURE, c.file), "utf8");
      expect(old).not.toBe(c.svg);
      expect(sameMarkup(old, c.svg), c.file).toBe(true);
    }
    expect(markupTokens(newPage)!.length).toBeGreaterThan(2000);
  });

  it("any edit still differs: text, an escaped character, an element, a class, a comment, a line break in a document", () => {
    const edits: [string, string][] = [
      ["Erin Engineer", "Erin Enginee"],
      ["&lt;x&gt;", "<x>"],
      ["Fisher&#39;s", "Fisher's "],
      ["</body>", "<script>alert(1)</script></body>"],
      ['<span class="content bad">', '<span class="content ok">'],
      ["</body>", "<!-- note --></body>"],
      ["Classifies iris flowers.\n", "Classifies iris flowers. "],
      ['<div class="doc-body">', '<div class="doc-body" style="display:none">'],
      ["<h4>", "<h4/>"],
    ];
    for (const [from, to] of edits) {
      expect(oldPage.includes(from), from).toBe(true);
      expect(sameMarkup(oldPage.replace(from, to), newPage), `${from} → ${to}`).toBe(false);
    }
  });

  it("only a line break between two tags is insignificant", () => {
    expect(sameMarkup(oldPage.replace("</h2>", "</h2>\n  "), newPage)).toBe(true);
    expect(sameMarkup(oldPage.replace("</caption>", "</caption> "), newPage)).toBe(false);
  });
});
