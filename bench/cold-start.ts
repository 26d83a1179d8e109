/**
 * Cold start per Lambda function: each function bundled as the CDK app bundles it, its bundle size,
 * and the time a fresh `node` process takes to import the bundle and obtain its `handler` export
 * (not invoked: that needs AWS), beyond a bare Node start measured in the same run. Verdicts against
 * the targets (issue #16): bundle ≤ 1 MiB, import ≤ 150 ms. A missed target is reported, never
 * thrown: this is a measurement, not a test.
 *
 * `npm run bench` runs it as one section; `node bench/cold-start.ts [--quick]` runs it alone and
 * prints the table and the largest bundle's heaviest inputs (for work on the bundles themselves).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { handlerEntries } from '../functions/api/entries.ts';
import { lambdaEsbuildOptions } from '../infra/bundling.ts';
import { ROOT, round, type Spread, spread } from './lib.ts';

export const COLD_TARGETS = { bundleKiB: 1024, importMs: 150 };
/** Probes per function (and as many bare starts beside them); the median is reported. */
export const COLD_RUNS = { quick: 5, full: 15 };

/** Every Lambda function of the stateless stack, by the name the bench reports. */
export const LAMBDA_ENTRIES: Record<string, { entry: string; kind: 'api' | 'worker' | 'deploy' }> = {
  ...Object.fromEntries(
    Object.entries(handlerEntries).map(([group, entry]) => [group, { entry, kind: 'api' as const }]),
  ),
  'state-stream': { entry: 'functions/streams/state-stream.ts', kind: 'worker' },
  verifier: { entry: 'functions/streams/verifier.ts', kind: 'worker' },
  maintenance: { entry: 'functions/scheduled/maintenance.ts', kind: 'worker' },
  migrate: { entry: 'functions/deploy/migrate.ts', kind: 'deploy' },
};

/**
 * What infra/stateless-stack.ts sets inline (its `bundling` block and the functions' environment)
 * rather than in infra/bundling.ts. The bench repeats these settings below and checks on every run
 * that the stack still says them, so a change there is reported instead of silently not measured.
 */
const STACK_SETTINGS = [
  'format: OutputFormat.ESM',
  "target: 'node24'",
  'minify: true',
  'sourceMap: true',
  "NODE_OPTIONS: '--enable-source-maps'",
];
/** The functions run with source maps enabled (the stack's environment), so the probes do too. */
const PROBE_ENV = { ...process.env, AWS_REGION: 'us-east-1', NODE_OPTIONS: '--enable-source-maps' };

export interface ColdFunction {
  entry: string;
  kind: 'api' | 'worker' | 'deploy';
  /** index.mjs, what Lambda loads (the source map beside it is reported apart). */
  bundleKiB: number;
  sourceMapKiB: number;
  /** Wall time of `node` importing the bundle, minus the bare start's median (ms). */
  importMs: Spread;
  /** The import alone as timed inside the probe (no process start or exit), for cross-checking. */
  inProcessMs: Spread;
  bundleOk: boolean;
  importOk: boolean;
  verdict: string;
}

export interface ColdStart {
  targets: typeof COLD_TARGETS;
  runs: number;
  /** os.loadavg() before and after: the probes share the machine with whatever else runs. */
  loadAverage: { before: number[]; after: number[] };
  bareNodeMs: Spread;
  /** Settings of STACK_SETTINGS that infra/stateless-stack.ts no longer contains (empty: in step). */
  stackDrift: string[];
  functions: Record<string, ColdFunction>;
  /** The heaviest inputs of the largest bundle, by minified bytes in its output. */
  largest: {
    function: string;
    topPackages: { name: string; KiB: number }[];
    topInputs: { path: string; KiB: number }[];
  };
}

function probe(args: string[]): { ms: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { env: PROBE_ENV, stdio: 'pipe' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`cold start probe ${args.join(' ')} failed: ${r.stderr}`);
  return { ms, stdout: r.stdout.toString() };
}

/** Which package (or repo directory) an esbuild input path belongs to. */
function owner(input: string): string {
  const nm = input.lastIndexOf('node_modules/');
  if (nm < 0) return input.split('/').slice(0, 2).join('/');
  const parts = input.slice(nm + 'node_modules/'.length).split('/');
  return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? input);
}

function heaviest(meta: Metafile, outfile: string) {
  const out = Object.entries(meta.outputs).find(([p]) => path.resolve(ROOT, p) === outfile)?.[1];
  const inputs = Object.entries(out?.inputs ?? {}).map(([p, i]) => ({ path: p, bytes: i.bytesInOutput }));
  const byPackage = new Map<string, number>();
  for (const i of inputs) byPackage.set(owner(i.path), (byPackage.get(owner(i.path)) ?? 0) + i.bytes);
  const top = <T>(xs: T[], bytes: (x: T) => number) =>
    [...xs].sort((a, b) => bytes(b) - bytes(a)).slice(0, 10);
  return {
    topPackages: top([...byPackage], ([, b]) => b).map(([name, b]) => ({ name, KiB: round(b / 1024, 1) })),
    topInputs: top(inputs, (i) => i.bytes).map((i) => ({ path: i.path, KiB: round(i.bytes / 1024, 1) })),
  };
}

/**
 * Bundles one function as the CDK's NodejsFunction runs esbuild for it (infra/bundling.ts) into
 * `outfile` (index.mjs); the metafile changes nothing in the output.
 */
export async function bundleFunction(entry: string, outfile: string): Promise<Metafile> {
  const r = await build({ ...lambdaEsbuildOptions(ROOT, entry), outfile, metafile: true });
  return r.metafile;
}

export async function coldStart(
  runs: number,
  log: (m: string) => void = () => undefined,
): Promise<ColdStart> {
  const loadBefore = os.loadavg().map((x) => round(x, 1));
  const stack = await fs.readFile(path.join(ROOT, 'infra', 'stateless-stack.ts'), 'utf8');
  const stackDrift = STACK_SETTINGS.filter((s) => !stack.includes(s));
  if (stackDrift.length)
    log(
      `WARNING: infra/stateless-stack.ts no longer says ${stackDrift.join(', ')}; bench/cold-start.ts bundles differently from the stack`,
    );
  const outDir = path.join(ROOT, 'bench', '.out');
  await fs.rm(outDir, { recursive: true, force: true });
  try {
    const built = await Promise.all(
      Object.entries(LAMBDA_ENTRIES).map(async ([name, { entry }]) => {
        const outfile = path.join(outDir, name, 'index.mjs');
        return { name, outfile, meta: await bundleFunction(entry, outfile) };
      }),
    );
    log(`cold start: ${built.length} bundles built`);

    // Round-robin: each round starts bare Node once and imports every bundle once, so every
    // function and the baseline see the same spells of machine load (a 2-core machine's noise
    // otherwise lands on whichever function was probed during it).
    const bare: number[] = [];
    const samples = new Map<string, { wall: number[]; inProcess: number[] }>(
      built.map(({ name }) => [name, { wall: [], inProcess: [] }]),
    );
    for (let i = 0; i < runs; i++) {
      bare.push(probe(['--input-type=module', '-e', '0']).ms);
      for (const { name, outfile } of built) {
        const s = samples.get(name) as { wall: number[]; inProcess: number[] };
        const url = JSON.stringify(pathToFileURL(outfile).href);
        const r = probe([
          '--input-type=module',
          '-e',
          `const t0 = performance.now(); const m = await import(${url});
           if (typeof m.handler !== 'function') throw new Error('no handler export');
           process.stdout.write(String(performance.now() - t0));`,
        ]);
        s.wall.push(r.ms);
        s.inProcess.push(Number(r.stdout));
      }
    }
    const bareNodeMs = spread(bare);
    const rounded = (s: Spread): Spread => ({
      ...s,
      median: round(s.median, 0),
      min: round(s.min, 0),
      max: round(s.max, 0),
    });

    const functions: Record<string, ColdFunction> = {};
    for (const { name, outfile } of built) {
      const s = samples.get(name) as { wall: number[]; inProcess: number[] };
      const bytes = (await fs.stat(outfile)).size;
      const bundleKiB = round(bytes / 1024, 0);
      const sourceMapKiB = round((await fs.stat(`${outfile}.map`)).size / 1024, 0);
      const importMs = rounded(spread(s.wall.map((w) => w - bareNodeMs.median)));
      const bundleOk = bytes <= COLD_TARGETS.bundleKiB * 1024;
      const importOk = importMs.median <= COLD_TARGETS.importMs;
      const misses = [
        ...(bundleOk ? [] : [`bundle ${bundleKiB} > ${COLD_TARGETS.bundleKiB} KiB`]),
        ...(importOk ? [] : [`import ${importMs.median} > ${COLD_TARGETS.importMs} ms`]),
      ];
      functions[name] = {
        ...(LAMBDA_ENTRIES[name] as { entry: string; kind: 'api' | 'worker' | 'deploy' }),
        bundleKiB,
        sourceMapKiB,
        importMs,
        inProcessMs: rounded(spread(s.inProcess)),
        bundleOk,
        importOk,
        verdict: misses.length ? `target missed: ${misses.join('; ')}` : 'holds',
      };
    }
    const largest = built.reduce((a, b) =>
      (functions[b.name]?.bundleKiB ?? 0) > (functions[a.name]?.bundleKiB ?? 0) ? b : a,
    );
    return {
      targets: COLD_TARGETS,
      runs,
      loadAverage: { before: loadBefore, after: os.loadavg().map((x) => round(x, 1)) },
      bareNodeMs: rounded(bareNodeMs),
      stackDrift,
      functions,
      largest: { function: largest.name, ...heaviest(largest.meta, largest.outfile) },
    };
  } finally {
    await fs.rm(outDir, { recursive: true, force: true });
  }
}

/** The per-function table, as Markdown (bench/README.md) and, padded, on the console. */
export function coldStartTable(c: ColdStart): string[][] {
  return [
    ['Function', 'Bundle (KiB)', 'Cold import (ms, median, min–max)', 'Bare Node (ms)', 'Verdict'],
    ...Object.entries(c.functions).map(([name, f]) => [
      f.kind === 'api' ? name : `${name} (${f.kind})`,
      String(f.bundleKiB),
      `${f.importMs.median} (${f.importMs.min}–${f.importMs.max})`,
      String(c.bareNodeMs.median),
      f.verdict,
    ]),
  ];
}

export function markdownTable(rows: string[][]): string {
  const [head = [], ...body] = rows;
  return [head, head.map(() => '---'), ...body].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

export function consoleTable(rows: string[][]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((x, i) => x.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The console report: the table, then what dominates the largest bundle. */
export function describeColdStart(c: ColdStart): string {
  const l = c.largest;
  return [
    consoleTable(coldStartTable(c)),
    `targets: bundle ≤ ${c.targets.bundleKiB} KiB, import ≤ ${c.targets.importMs} ms beyond a bare Node start (median of ${c.runs}; load average ${c.loadAverage.before[0]} before, ${c.loadAverage.after[0]} after)`,
    `largest bundle (${l.function}), top packages: ${l.topPackages.map((p) => `${p.name} ${p.KiB} KiB`).join(', ')}`,
    `largest bundle (${l.function}), top inputs: ${l.topInputs.map((p) => `${p.path} ${p.KiB} KiB`).join(', ')}`,
    ...(c.stackDrift.length ? [`WARNING: stack drift: ${c.stackDrift.join(', ')}`] : []),
  ].join('\n');
}

if (import.meta.main) {
  const quick = process.argv.includes('--quick');
  const t0 = performance.now();
  const c = await coldStart(quick ? COLD_RUNS.quick : COLD_RUNS.full, (m) =>
    process.stdout.write(`bench: ${m}\n`),
  );
  process.stdout.write(`${describeColdStart(c)}\n`);
  process.stdout.write(`bench: cold start took ${round((performance.now() - t0) / 1000, 1)} s\n`);
}
