// A RunView that changes: holds the current view, reduces every input into it, and tells listeners about each
// change (with the input that caused it, so a line-per-event renderer knows what happened).
import { Emitter, type Unsubscribe } from '../net/emitter';
import { emptyRunView, reduceRunView, type RunView, type RunViewInput } from './run-view';

export interface RunViewChange {
  view: RunView;
  input: RunViewInput;
}

export class RunViewStore {
  private current: RunView;
  private readonly events = new Emitter<{ change: RunViewChange }>();

  constructor(initial: RunView = emptyRunView()) {
    this.current = initial;
  }

  get view(): RunView {
    return this.current;
  }

  dispatch(input: RunViewInput): void {
    const next = reduceRunView(this.current, input);
    if (next === this.current) return;
    this.current = next;
    this.events.emit('change', { view: next, input });
  }

  onChange(handler: (change: RunViewChange) => void): Unsubscribe {
    return this.events.on('change', handler);
  }
}
