/**
 * What each Lambda bundle carries, built as the CDK app builds it (infra/bundling.ts): a function
 * composes only the aws modules its entry names (functions/aws-container.ts), so the auth function
 * carries no S3 client and only auth, admin and maintenance carry Cognito; no bundle carries the
 * X-Ray SDK or the SDK's full credential chain (functions/lambda-credentials.ts stands in). Sizes and
 * import times are measured in `npm run bench` (bench/cold-start.ts), not asserted here.
 */
import path from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { handlerEntries } from '../../functions/api/entries.ts';
import { lambdaEsbuildOptions } from '../../infra/bundling.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

const ENTRIES: Record<string, string> = {
  ...handlerEntries,
  'state-stream': 'functions/streams/state-stream.ts',
  verifier: 'functions/streams/verifier.ts',
  maintenance: 'functions/scheduled/maintenance.ts',
};
/** Functions whose routes or jobs call Cognito (registration, login, roles). */
const WITH_COGNITO = new Set(['auth', 'admin', 'maintenance']);
/** Functions that never touch stored bytes. */
const WITHOUT_S3 = new Set(['auth']);

/** The npm packages (and repo files) whose code ends up in a function's bundle. */
async function bundleInputs(entry: string): Promise<Set<string>> {
  const r = await build({
    ...lambdaEsbuildOptions(ROOT, entry),
    outfile: path.join(ROOT, 'bench', '.out', 'test', 'index.mjs'),
    write: false,
    metafile: true,
  });
  const out = Object.values(r.metafile.outputs).find((o) => o.entryPoint);
  const owners = new Set<string>();
  for (const [input, { bytesInOutput }] of Object.entries(out?.inputs ?? {})) {
    if (bytesInOutput === 0) continue;
    const nm = input.lastIndexOf('node_modules/');
    if (nm < 0) {
      owners.add(input);
      continue;
    }
    const parts = input.slice(nm + 'node_modules/'.length).split('/');
    owners.add(parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? input));
  }
  return owners;
}

describe('Lambda bundles carry only what their function composes', () => {
  for (const [name, entry] of Object.entries(ENTRIES)) {
    it(`${name}`, async () => {
      const inputs = await bundleInputs(entry);
      // the common adapters are in every bundle
      expect(inputs).toContain('@aws-sdk/client-dynamodb');
      expect(inputs).toContain('pg');
      expect(inputs).toContain('ioredis');
      expect(inputs.has('@aws-sdk/client-s3')).toBe(!WITHOUT_S3.has(name));
      expect(inputs.has('@aws-sdk/client-cognito-identity-provider')).toBe(WITH_COGNITO.has(name));
      // the credential chain Lambda uses, not the whole default chain
      expect(inputs).toContain('functions/lambda-credentials.ts');
      for (const absent of [
        '@aws-sdk/credential-provider-node',
        '@aws-sdk/credential-provider-ini',
        '@aws-sdk/credential-provider-sso',
        '@aws-sdk/nested-clients',
        'aws-xray-sdk-core',
        '@aws-lambda-powertools/tracer',
      ])
        expect(inputs, absent).not.toContain(absent);
      // nothing of the local runtime
      expect([...inputs].filter((i) => i.startsWith('local/') || i.startsWith('@electric-sql'))).toEqual([]);
    }, 30_000);
  }
});
