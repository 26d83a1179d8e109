/**
 * esbuild settings shared by the Lambda functions (infra/stateless-stack.ts) and the cold-start
 * benchmark (bench/run.ts), so the benchmark measures what deploys.
 *
 * The AWS SDK is bundled, not taken from the runtime: the deployed code then runs the SDK version the
 * tests ran (the runtime's copy changes under it), tree-shaking drops the unused commands, and the
 * bundle runs anywhere Node.js runs (the emulator deploy executes it as a plain subprocess).
 */
export const LAMBDA_EXTERNALS = ['pg-native'];

/**
 * Prefer packages' ES module builds: the AWS SDK's CommonJS builds carry every command of a
 * client (its aggregated client) where the ES builds tree-shake to the commands used. Measured on
 * the files function: 1915 KB -> 1554 KB and 64 ms less import time.
 */
export const LAMBDA_MAIN_FIELDS = ['module', 'main'];

/**
 * Modules replaced in the bundles. The SDK's default credential chain becomes the environment (and
 * container endpoint) providers Lambda actually uses: functions/lambda-credentials.ts says why.
 * Paths are relative to the repo root, where the bundler runs.
 */
export const LAMBDA_ALIASES: Record<string, string> = {
  '@aws-sdk/credential-provider-node': './functions/lambda-credentials.ts',
};

/**
 * Source maps without the sources: stack traces still name the TypeScript file and line, and
 * Node's --enable-source-maps parses a third of the map at cold start (5.3 MB -> 1.9 MB; measured
 * 25 ms of import time on the files function).
 */
export const LAMBDA_SOURCES_CONTENT = false;

/** ESM bundles need a require shim for the CommonJS dependencies inside them. */
export const ESM_REQUIRE_BANNER =
  "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);";

/**
 * The esbuild options of one function's bundle as the CDK's NodejsFunction builds it (the constants
 * above, and infra/stateless-stack.ts's bundling block: ESM, node24, minified, linked source map),
 * for the cold-start bench and the bundle tests. `root`: the repo root, where the aliases resolve.
 */
export function lambdaEsbuildOptions(root: string, entry: string) {
  return {
    absWorkingDir: root,
    entryPoints: [`${root}/${entry}`],
    bundle: true,
    platform: 'node' as const,
    format: 'esm' as const,
    target: 'node24',
    minify: true,
    sourcemap: true,
    sourcesContent: LAMBDA_SOURCES_CONTENT,
    alias: LAMBDA_ALIASES,
    external: LAMBDA_EXTERNALS,
    mainFields: LAMBDA_MAIN_FIELDS,
    banner: { js: ESM_REQUIRE_BANNER },
    logLevel: 'silent' as const,
  };
}
