// Every error the contributor page shows says what to do about it: the known causes, matched on the message, get
// their advice; anything else gets a generic one. Pure text.

const ADVICE: Array<[RegExp, string]> = [
  [
    /webgpu|navigator\.gpu|requestAdapter|no adapter|GPU/i,
    'This browser gave no WebGPU adapter: use a recent Chrome or Edge (or Firefox with WebGPU on), and open the page over https or on localhost.',
  ],
  [
    /coordinator=|fingerprint/i,
    'The join link is incomplete: ask the run’s organiser for the full link (it ends in coordinator=<64 hex digits>), or pick a live run above.',
  ],
  [/token|unauthori[sz]ed|forbidden|4003|4401/i, 'This room needs a join token: use the link with token=… that the organiser shared.'],
  [
    /refused by the coordinator|protocol/i,
    'This page is another version than the run’s coordinator: reload the page (or clear the cache) to get the current version.',
  ],
  [
    /websocket|signal|ECONNREFUSED|closed before|network/i,
    'Could not reach the signaling server: check the address and your connection, then press Join again.',
  ],
  [
    /ice|nat traversal|turn|stun/i,
    'No network path to the other peers (NAT): the server needs a TURN relay (tabswarm serve --turn … --turn-secret …). Tell the organiser.',
  ],
  [/hash|sha-?256|corpus|vocab/i, 'This tab’s training data does not match the run: reload the page so it fetches the run’s data again.'],
  [
    /quota|indexeddb|storage/i,
    'The browser refused storage (private mode or a full disk): allow site storage, or expect no checkpoints after a reload.',
  ],
  [/lost|device|out of memory/i, 'The GPU device was lost (driver reset or out of memory): close other GPU-heavy tabs and press Join again.'],
];

export function errorAdvice(message: string): string {
  for (const [re, advice] of ADVICE) if (re.test(message)) return advice;
  return 'Press Join to try again; if it keeps failing, send the log below to the run’s organiser.';
}
