// `tabswarm train`'s matmul tuning, shape by shape so a terminal shows a bar (the first run on a CPU adapter takes
// minutes); in a log each shape's "[tune] ..." line says the same. Choices already in .cache/matmul-tuning.json
// (imported by cliRuntime) are not re-timed.
import { tuneMatmul } from '../gpu/autotune';
import { matmulShapeKey } from '../gpu/ops/matmul';
import type { Runtime } from '../gpu/runtime';
import type { Trainer } from '../model/trainer';
import { progressBar } from './progress';

/** Tunes every matmul shape the trainer launches; returns how many were timed now. */
export async function tuneTrainer(rt: Runtime, trainer: Trainer, log: (s: string) => void): Promise<number> {
  const all = [...trainer.stage.matmulShapes(), ...trainer.stages.flatMap((s) => s.matmulShapes())];
  const shapes = [...new Map(all.map((s) => [matmulShapeKey(s), s])).values()];
  const bar = progressBar('tuning matmuls', shapes.length, 'shapes');
  let timed = 0;
  try {
    for (let i = 0; i < shapes.length; i++) {
      bar?.update(i, matmulShapeKey(shapes[i]));
      timed += await tuneMatmul(rt, [shapes[i]], { log: bar ? undefined : log });
    }
    bar?.update(shapes.length, `${timed} timed, ${shapes.length - timed} from the cache`);
  } finally {
    bar?.stop();
  }
  return timed;
}
