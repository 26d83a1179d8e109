/** `cdk synth` / `cdk deploy` entry point (cdk.json runs it). See build-app.ts. */
import { buildApp } from './build-app.ts';

buildApp().app.synth();
