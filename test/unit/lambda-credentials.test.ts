/**
 * The bundled functions' credential chain (functions/lambda-credentials.ts): the environment, as
 * Lambda delivers the execution role's credentials, then a container credentials endpoint (a real
 * HTTP server on loopback here), and a clear refusal when neither is there.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultProvider } from '../../functions/lambda-credentials.ts';

const KEYS = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_CREDENTIAL_EXPIRATION',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'AWS_PROFILE',
];

describe('Lambda credential chain', () => {
  const saved: Record<string, string | undefined> = {};
  let server: http.Server | undefined;
  let requests = 0;

  beforeEach(() => {
    for (const k of KEYS) {
      saved[k] = process.env[k];
      delete process.env[k];
    }
    requests = 0;
  });
  afterEach(async () => {
    for (const k of KEYS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  async function containerEndpoint(): Promise<string> {
    const expiration = new Date(Date.now() + 3600_000).toISOString();
    const srv = http.createServer((_req, res) => {
      requests++;
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          AccessKeyId: 'AKIDCONTAINER',
          SecretAccessKey: 'container-secret',
          Token: 'container-token',
          Expiration: expiration,
        }),
      );
    });
    server = srv;
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(srv.address() as AddressInfo).port}/v2/credentials`;
  }

  it('takes the execution role credentials Lambda puts in the environment', async () => {
    process.env.AWS_ACCESS_KEY_ID = 'AKIDENV';
    process.env.AWS_SECRET_ACCESS_KEY = 'env-secret';
    process.env.AWS_SESSION_TOKEN = 'env-token';
    await expect(defaultProvider()()).resolves.toMatchObject({
      accessKeyId: 'AKIDENV',
      secretAccessKey: 'env-secret',
      sessionToken: 'env-token',
    });
  });

  it('prefers the environment over a container endpoint, and falls back to the endpoint', async () => {
    process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI = await containerEndpoint();
    process.env.AWS_ACCESS_KEY_ID = 'AKIDENV';
    process.env.AWS_SECRET_ACCESS_KEY = 'env-secret';
    await expect(defaultProvider()()).resolves.toMatchObject({ accessKeyId: 'AKIDENV' });
    expect(requests).toBe(0);

    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    const creds = await defaultProvider()();
    expect(creds).toMatchObject({
      accessKeyId: 'AKIDCONTAINER',
      secretAccessKey: 'container-secret',
      sessionToken: 'container-token',
    });
    expect(creds.expiration).toBeInstanceOf(Date);
    expect(requests).toBe(1);
  });

  it('refuses with the SDK’s error when Lambda gave it nothing', async () => {
    await expect(defaultProvider()()).rejects.toThrow(/environment variable credentials/i);
  });
});
