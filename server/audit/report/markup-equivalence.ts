/**
 * Whether two serialisations of the report page (or of a chart) are the same document: same elements, same
 * attributes in the same order, same text, character for character. `export --verify` compares report.html with
 * what report.json renders to byte for byte first; this is its fallback for bundles exported before the report was
 * rendered with React, whose string templates serialised the same document slightly differently: "'" written as
 * &#39; or literally (React: &#x27;), <meta charset="utf-8"> (React: <meta charSet="utf-8"/>), SVG <rect .../>
 * (React: <rect ...></rect>), and newlines between blocks.
 *
 * Invariants (it must not let an edit through):
 * - Tokenising happens on the raw bytes, before any entity is decoded: "&lt;b&gt;" stays text, "<b>" a tag.
 * - Text is compared exactly after decoding the five entities both serialisers emit; any other entity, a comment,
 *   a doctype other than the leading one, or an unquoted attribute stays as it is and so differs.
 * - The only text dropped is whitespace containing a newline that stands between two tags (the old templates'
 *   line breaks between blocks; none sits inside a pre-wrap element, whose content is text only).
 * - "<x/>" counts as "<x></x>" only for SVG shapes and HTML void elements, where it means that; for any other HTML
 *   element "<x/>" opens it, so it stays different.
 */

const ENTITIES: Record<string, string> = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'", "&#x27;": "'" };
const decode = (s: string) => s.replace(/&(?:amp|lt|gt|quot|#39|#x27);/g, (e) => ENTITIES[e]!);
const SELF_CLOSING = new Set(["rect", "line", "path", "circle", "meta", "br", "hr", "img", "input", "link"]);
const VOID = new Set(["meta", "br", "hr", "img", "input", "link"]);

/** Tags as "<name attr=value …>" / "</name>", text as "#text"; null when the markup has something this does not model. */
export function markupTokens(html: string): string[] | null {
  const out: string[] = [];
  const re = /<\/?[a-zA-Z][^<>]*>|<!doctype html>|[^<]+|</gi;
  for (const [t] of html.matchAll(re)) {
    if (t === "<") return null; // a "<" that opens no tag we model (comment, CDATA, stray): not comparable
    if (/^<!doctype/i.test(t)) {
      if (out.length > 0) return null;
      out.push("<!doctype html>");
      continue;
    }
    if (t.startsWith("<")) {
      const closing = t.startsWith("</");
      const selfClosing = !closing && t.endsWith("/>");
      const body = t.slice(closing ? 2 : 1, selfClosing ? -2 : -1);
      const name = /^[a-zA-Z][a-zA-Z0-9-]*/.exec(body)![0].toLowerCase();
      let rest = body.slice(name.length);
      const attrs: string[] = [];
      for (;;) {
        const m = /^\s+([^\s=/>"']+)="([^"]*)"/.exec(rest);
        if (!m) break;
        attrs.push(`${m[1]!.toLowerCase()}=${JSON.stringify(decode(m[2]!))}`);
        rest = rest.slice(m[0].length);
      }
      if (rest.trim() !== "") return null; // unquoted or malformed attributes: not comparable
      if (closing) {
        if (attrs.length) return null;
        if (!VOID.has(name)) out.push(`</${name}>`);
        continue;
      }
      if (selfClosing && !SELF_CLOSING.has(name)) return null;
      out.push(`<${[name, ...attrs].join(" ")}>`);
      if (selfClosing && !VOID.has(name)) out.push(`</${name}>`);
      continue;
    }
    if (/^\s*$/.test(t) && t.includes("\n")) continue;
    const text = `#${decode(t)}`;
    if (out.at(-1)?.startsWith("#")) out[out.length - 1] += text.slice(1);
    else out.push(text);
  }
  return out;
}

export function sameMarkup(a: string, b: string): boolean {
  const x = markupTokens(a);
  const y = markupTokens(b);
  return x !== null && y !== null && x.length === y.length && x.every((t, i) => t === y[i]);
}
