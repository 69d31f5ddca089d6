// The coordinator page's sample box: a prompt (#sample-prompt), a button (#sample) and the text the current model
// wrote after it (#sample-out). The page hands it `sample` once it holds a copy of the weights (model-snapshot.ts);
// until then the box says why it cannot sample yet. A prompt the vocabulary cannot express is an error in the box.
import { LitElement, css, html } from 'lit';

export type SampleFn = (prompt: string) => Promise<string>;

export class TabswarmSampleBox extends LitElement {
  static override styles = css`
    :host {
      display: block;
    }
    .row {
      display: flex;
      gap: 0.4rem;
      flex-wrap: wrap;
    }
    input {
      flex: 1 1 10rem;
      min-width: 0;
      font: inherit;
      padding: 0.3rem;
    }
    button {
      font: inherit;
      padding: 0.3rem 0.9rem;
    }
    pre {
      white-space: pre-wrap;
      overflow-wrap: anywhere;
      background: #f6f7fb;
      border-radius: 6px;
      padding: 0.5rem;
      min-height: 3rem;
      max-height: 16rem;
      overflow: auto;
      margin: 0.4rem 0 0;
    }
    .muted {
      color: #56607a;
      font-size: 0.8rem;
    }
    .err {
      color: #b3261e;
    }
  `;

  static override properties = { sample: { attribute: false }, note: {}, busy: { state: true }, out: { state: true }, error: { state: true } };

  /** Samples from the current weights (null: none collected yet). */
  sample: SampleFn | null = null;
  /** Where the weights come from (shown under the box). */
  note = '';
  busy = false;
  out = '';
  error = '';

  private async run(): Promise<void> {
    const fn = this.sample;
    if (!fn || this.busy) return;
    const prompt = this.renderRoot.querySelector<HTMLInputElement>('#sample-prompt')?.value ?? '';
    this.busy = true;
    this.error = '';
    try {
      this.out = await fn(prompt);
    } catch (e) {
      this.error = (e as Error).message;
    } finally {
      this.busy = false;
    }
  }

  override render() {
    return html`<div class="row">
        <input id="sample-prompt" placeholder="prompt (e.g. ROMEO:)" aria-label="sample prompt" ?disabled=${!this.sample} />
        <button id="sample" ?disabled=${!this.sample || this.busy} @click=${() => void this.run()}>${this.busy ? 'Sampling…' : 'Sample'}</button>
      </div>
      <pre id="sample-out" data-k="sample-out">${this.out}</pre>
      ${this.error ? html`<p class="err">${this.error}</p>` : ''}
      <p class="muted">${this.note}</p>`;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tabswarm-sample-box': TabswarmSampleBox;
  }
}

if (!customElements.get('tabswarm-sample-box')) customElements.define('tabswarm-sample-box', TabswarmSampleBox);
