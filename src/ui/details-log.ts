// A page's collapsed "details and log": small muted text, the log wrapping and scrolling inside a bounded box so a
// long line or a long run never widens or lengthens the page. Shared by the contributor and coordinator pages.
import { css } from 'lit';

export const detailsLogStyles = css`
  details {
    font-size: 0.8rem;
    color: #56607a;
  }
  pre {
    white-space: pre-wrap;
    overflow-wrap: anywhere;
    max-height: 12rem;
    overflow: auto;
  }
`;
