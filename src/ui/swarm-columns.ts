// A compact view of the swarm on the contributor page: one column per pipeline stage, its members as chips coloured
// by state, this tab's chip marked "you". Fed the contributor's run view (memberships from the coordinator's
// swarm-members, fed as `membership` inputs; the run's step from its step reports). Wraps on a 390 px phone.
import { LitElement, css, html } from 'lit';
import type { PeerState, RunView } from '../coordinator/run-view';

const COLOURS: Partial<Record<PeerState | 'training', string>> = {
  training: '#3b5bdb',
  'copying state': '#e8a33d',
  linking: '#e8a33d',
  ready: '#3b8f5a',
  'forward/backward': '#3b5bdb',
  reducing: '#3b5bdb',
  applied: '#3b8f5a',
  error: '#b3261e',
  gone: '#9aa1b2',
};

export class TabswarmSwarmColumns extends LitElement {
  static override styles = css`
    :host {
      display: block;
    }
    .cols {
      display: flex;
      flex-wrap: wrap;
      gap: 0.4rem;
    }
    .col {
      flex: 1 1 6rem;
      min-width: 0;
      background: #f6f7fb;
      border-radius: 6px;
      padding: 0.3rem;
    }
    .col h4 {
      margin: 0 0 0.2rem;
      font-size: 0.75rem;
      color: #56607a;
      font-weight: 600;
    }
    .chip {
      display: block;
      font:
        0.72rem ui-monospace,
        monospace;
      padding: 0.1rem 0.3rem;
      margin: 0.15rem 0;
      border-radius: 4px;
      border-left: 4px solid var(--c, #9aa1b2);
      background: #fff;
      overflow: hidden;
      text-overflow: ellipsis;
      white-space: nowrap;
    }
    .me {
      font-weight: 700;
    }
    .empty {
      color: #56607a;
      font-size: 0.8rem;
    }
  `;

  static override properties = { view: { attribute: false }, me: {}, myState: {} };

  view: RunView | null = null;
  me = '';
  myState = '';

  override render() {
    const v = this.view;
    if (!v || v.stages.length === 0) return html`<p class="empty">No run yet: the stages show once the coordinator assigns this tab.</p>`;
    const state = new Map(v.peers.map((p) => [p.id, p.state]));
    return html`<div class="cols" data-k="swarm">
      ${v.stages.map(
        (s, i) =>
          html`<div class="col" data-stage=${i}>
            <h4>stage ${i} · ${s.layerEnd - s.layerStart} layer${s.layerEnd - s.layerStart === 1 ? '' : 's'}</h4>
            ${s.members.length === 0 ? html`<span class="empty">none</span>` : ''}
            ${s.members.map((id) => {
              // A contributor hears memberships and step reports, not each peer's step messages: once steps are
              // reported, a member that is neither gone nor failed is training.
              const known = state.get(id) ?? 'linking';
              const st = id === this.me ? this.myState : v.phase === 'training' && known !== 'gone' && known !== 'error' ? 'training' : known;
              const c = id === this.me ? '#3b5bdb' : (COLOURS[st as PeerState | 'training'] ?? '#9aa1b2');
              return html`<span class="chip ${id === this.me ? 'me' : ''}" style="--c:${c}" title=${`${id}: ${st}`}
                >${id === this.me ? 'you' : id.slice(0, 8)} · ${st}</span
              >`;
            })}
          </div>`,
      )}
    </div>`;
  }
}

if (!customElements.get('tabswarm-swarm-columns')) customElements.define('tabswarm-swarm-columns', TabswarmSwarmColumns);
