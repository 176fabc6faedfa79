/**
 * Text people write in Markdown (run descriptions, decision notes), rendered with react-markdown: no raw HTML (a
 * <script> or <img onerror> shows as text), links open with rel="noopener noreferrer nofollow".
 */
import Markdown, { type Components } from "react-markdown";

const components: Components = {
  a: ({ node: _node, ...props }) => <a {...props} rel="noopener noreferrer nofollow" />,
};

export function MarkdownText({ text, label }: { text: string; label: string }) {
  return (
    <div className="markdown" aria-label={label}>
      <Markdown components={components}>{text}</Markdown>
    </div>
  );
}
