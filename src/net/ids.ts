// Addressing on the signaling server and the data channels: peer ids and room ids. Generic: no swarm knowledge.
import { z } from 'zod';

export const peerIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'peer ids are 1-64 characters of [A-Za-z0-9_.:-]');

export const roomIdSchema = peerIdSchema;
