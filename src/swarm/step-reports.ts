// Coordinator -> peers progress: after every completed step the coordinator side broadcasts
//   status { state: 'step-report', step, detail: JSON {loss, ms, attempts} }
// so every peer (not only the last stage, which sees its own microbatch losses) can show the run's loss.
// Optional: peers work without it. The coordinator page and the browser e2e test install it.
import type { Coordinator, ControlPlane } from '../coordinator/coordinator';
import type { Unsubscribe } from '../net/emitter';

export const STEP_REPORT_STATE = 'step-report';

export function broadcastStepReports(coordinator: Coordinator, cp: Pick<ControlPlane, 'sendControl'>): Unsubscribe {
  return coordinator.events.on('step', (r) => {
    const detail = JSON.stringify({ loss: Number.isFinite(r.loss) ? r.loss : null, ms: Math.round(r.ms), attempts: r.attempts });
    try {
      cp.sendControl({ type: 'status', state: STEP_REPORT_STATE, step: r.step, detail }, '*');
    } catch {
      // signaling gone: the run is over for this coordinator anyway
    }
  });
}
