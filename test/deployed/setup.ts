/** Deploys the CDK app into MiniStack once for the deployed suite and hands the API URL over. */
import type { TestProject } from 'vitest/node';
import { deployToEmulator, type EmulatorDeployment } from '../../scripts/emulator-deploy.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    deployedApi: string;
    emulatorEndpoint: string;
    deployedOutputs: Record<string, Record<string, string>>;
    deployedStage: string;
    deployedDatabaseUrl: string;
  }
}

let deployment: EmulatorDeployment | undefined;

export default async function setup(project: TestProject) {
  const t0 = Date.now();
  deployment = await deployToEmulator();
  process.stdout.write(
    `deployed the CDK app into MiniStack in ${Math.round((Date.now() - t0) / 1000)} s: ${deployment.apiUrl}\n`,
  );
  project.provide('deployedApi', deployment.apiUrl);
  project.provide('emulatorEndpoint', deployment.endpoint);
  project.provide('deployedOutputs', deployment.outputs);
  project.provide('deployedStage', deployment.stage);
  project.provide('deployedDatabaseUrl', deployment.databaseUrl);
  return async () => {
    await deployment?.stop();
  };
}
