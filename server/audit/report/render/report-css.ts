/**
 * The report page's only styling: one inline stylesheet (the report's Content-Security-Policy allows inline styles
 * and nothing else: no scripts, no external requests). Screen layout plus print rules for A4 PDFs.
 *
 * Invariant: a constant (the page is a pure function of its data); React prints <style> contents unescaped, so it
 * must never contain "</style" or anything taken from the data.
 */
export const REPORT_CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#111;max-width:1000px;margin:24px auto;padding:0 24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;border-bottom:2px solid #222;padding-bottom:4px;margin-top:32px}h3{font-size:15px;margin:20px 0 6px}h4{font-size:14px;margin:14px 0 4px}h5{font-size:13px;margin:12px 0 4px}
.annex{font-size:12px;font-weight:normal;color:#555;float:right}.muted,.meta{color:#555}.meta{font-size:12px}.missing{color:#a40000;font-style:italic}
code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}.json{white-space:pre-wrap}
dl.facts{display:grid;grid-template-columns:220px 1fr;gap:2px 12px}dl.facts dt{font-weight:600}dl.facts dd{margin:0}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:12px}caption{text-align:left;font-weight:600;padding:4px 0}th,td{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f0f0f0}
.doc-body{white-space:pre-wrap;border-left:3px solid #888;padding:4px 10px;background:#fafafa}
.signatures li{margin:2px 0}.ref{font-size:11px;color:#555;margin-left:4px}.ref a{color:#1f5fbf}
.content{font-size:11px;margin-left:4px;padding:0 4px;border-radius:3px}.content.ok{color:#135e21;background:#e6f4e8}.content.bad{color:#fff;background:#a40000;font-weight:600}.content.nc{color:#555;background:#eee}
figure{margin:10px 0;break-inside:avoid}figcaption{font-size:12px;color:#555}svg{max-width:100%;height:auto}
.pem{font-size:11px;background:#f6f6f6;padding:8px}.proof,.wrap{font-size:10px}
header.cover{border-bottom:3px solid #111;padding-bottom:8px}
@page{size:A4;margin:16mm 14mm}
@media print{body{margin:0;max-width:none;padding:0;font-size:11px}a{color:inherit;text-decoration:none}h2{break-after:avoid}section{break-inside:auto}article,table,dl{break-inside:avoid}.appendix{break-before:page}}
`;
