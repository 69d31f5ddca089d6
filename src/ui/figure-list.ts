// The pages' figure list (<dl>: a label column, values that wrap anywhere so a long id never widens a 390 px page),
// shared by the contributor's swarm view and the solo engine.
import { css } from 'lit';

export const figureListStyles = css`
  dl {
    display: grid;
    grid-template-columns: minmax(5.5rem, max-content) minmax(0, 1fr);
    gap: 0.3rem 0.8rem;
  }
  dt {
    color: #56607a;
  }
  dd {
    margin: 0;
    min-width: 0;
    overflow-wrap: anywhere;
  }
`;
