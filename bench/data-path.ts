/**
 * `node bench/data-path.ts [--size MiB] [--runs N] [--parallel N] [--cpu-prof DIR]`: the local
 * node's data path alone, for work on it: one `npm start` runtime (RF 1, defaults), a file
 * uploaded and downloaded `runs` times, each phase timed (client hashing, transfer, complete,
 * until committed, download). With `--cpu-prof DIR` the runtime runs under V8's sampling profiler
 * and writes a .cpuprofile into DIR when it stops (open it in Chrome DevTools or speedscope). The
 * numbers are for comparing a change against the code before it; `npm run bench` is what is quoted.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  CompleteProbe,
  drain,
  MiB,
  makeFile,
  mbps,
  round,
  signUp,
  startChildRuntime,
  uploadPhased,
} from './lib.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '512' },
    runs: { type: 'string', default: '3' },
    parallel: { type: 'string', default: '4' },
    'cpu-prof': { type: 'string' },
  },
});
const size = Number(values.size) * MiB;
const runs = Number(values.runs);
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-data-path-'));
const file = path.join(work, 'file.bin');
await makeFile(file, size, 5);
const profDir = values['cpu-prof'] ? path.resolve(values['cpu-prof']) : undefined;
if (profDir) await fs.mkdir(profDir, { recursive: true });
const rt = await startChildRuntime(
  path.join(work, 'rt'),
  { STRATUS_LOCAL_NODES: '1', STRATUS_REPLICATION_FACTOR: '1' },
  profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
);
try {
  const probe = new CompleteProbe();
  const api = await signUp(rt.url, 'data-path@example.com', probe.fetch);
  // Phase windows on the monotonic clock the profile's timestamps use (µs), to slice the profile by.
  const us = () => Number(process.hrtime.bigint() / 1000n);
  const windows: { phase: string; start: number; end: number }[] = [];
  for (let r = 0; r < runs; r++) {
    const upStart = us();
    const cpu0 = await rt.cpuSeconds();
    let cpuAtComplete = cpu0;
    probe.beforeComplete = async () => {
      cpuAtComplete = await rt.cpuSeconds();
    };
    const up = await uploadPhased(api, probe, file, 'root', `file-${r}.bin`, {
      concurrency: Number(values.parallel),
    });
    windows.push({ phase: 'upload', start: upStart, end: us() });
    const partsStart = upStart + Math.round(up.hashMs * 1000);
    windows.push({
      phase: 'parts',
      start: partsStart,
      end: partsStart + Math.round((up.transferMs - up.completeMs) * 1000),
    });
    const cpu1 = await rt.cpuSeconds();
    const t0 = performance.now();
    const downStart = us();
    const { url } = await api.downloadUrl(up.fileId);
    const got = await drain(await fetch(url));
    const downMs = performance.now() - t0;
    windows.push({ phase: 'download', start: downStart, end: us() });
    const cpu2 = await rt.cpuSeconds();
    const perGiB = (s: number) => round(s / (size / 1024 ** 3), 2);
    if (got !== size) throw new Error(`download returned ${got} bytes`);
    process.stdout.write(
      `${values.size} MiB: hash ${round(up.hashMs)} ms; parts ${mbps(size, up.transferMs - up.completeMs)} MB/s, upload ${mbps(size, up.transferMs)} MB/s ` +
        `(complete ${up.completeStatus} in ${round(up.completeMs)} ms, committed +${round(up.completeToCommittedMs)} ms); ` +
        `end to end ${mbps(size, up.endToEndMs)} MB/s; download ${mbps(size, downMs)} MB/s; ` +
        `runtime CPU per GiB: parts ${perGiB(cpuAtComplete - cpu0)} s, complete ${perGiB(cpu1 - cpuAtComplete)} s, download ${perGiB(cpu2 - cpu1)} s\n`,
    );
  }
  if (profDir) await fs.writeFile(path.join(profDir, 'windows.json'), JSON.stringify(windows));
} finally {
  await rt.stop();
  await fs.rm(work, { recursive: true, force: true });
}
if (profDir) process.stdout.write(`profile written to ${profDir}\n`);
