/**
 * Which malware scanner each composition builds from STRATUS_SCANNER, without a network: the aws
 * profile's functions that hold storage get the GuardDuty scanner over their S3 nodes (its S3 calls
 * answered by a middleware on the home node's client), the auth function (no storage) still
 * starts, and the local runtime refuses `guardduty` with one configuration line. The scanner itself
 * runs against the emulator in test/integration/guardduty-scanner.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { type AwsSdkClient, createAwsContainer } from '../../functions/aws-container.ts';
import { s3Storage } from '../../functions/aws-storage.ts';
import { assemble, type Container } from '../../functions/container.ts';
import { createLocalContainer } from '../../local/local-container.ts';
import { MemoryBlobStore } from '../../shared/adapters/memory/memory-blob-store.ts';
import { MemoryCache } from '../../shared/adapters/memory/memory-cache.ts';
import { MemoryDatabase, memoryMetadataOver } from '../../shared/adapters/memory/memory-metadata.ts';
import { MemoryStateStore } from '../../shared/adapters/memory/memory-state-store.ts';
import { MemoryThrottleStore } from '../../shared/adapters/memory/memory-throttle-store.ts';
import { GuardDutyScanner } from '../../shared/adapters/scanners/guardduty-scanner.ts';
import { type AwsConfig, ConfigError, type LocalConfig, loadConfig } from '../../shared/config/config.ts';
import { UnavailableError } from '../../shared/domain/errors.ts';
import { createLogger } from '../../shared/observability/logger.ts';

const awsConfig = (env: Record<string, string> = {}) =>
  loadConfig({
    STRATUS_PROFILE: 'aws',
    AWS_REGION: 'us-east-1',
    STRATUS_BUCKET: 'stratus-blobs',
    STRATUS_TABLE: 'stratus-state',
    // Never connected to: the pool opens connections on first query only.
    STRATUS_DATABASE_URL: 'postgres://stratus@127.0.0.1:1/stratus',
    STRATUS_USER_POOL_ID: 'us-east-1_pool',
    STRATUS_USER_POOL_CLIENT_ID: 'client',
    STRATUS_LOG_LEVEL: 'silent',
    ...env,
  }) as AwsConfig;

/** Answers GetObjectTagging on every S3 client the composition builds, and records what it asked. */
function tagsAnsweredLocally(status: string) {
  const asked: Record<string, unknown>[] = [];
  const client = (c: AwsSdkClient) => {
    if (!(c instanceof S3Client)) return;
    c.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'GetObjectTaggingCommand') return next(args);
        asked.push(args.input as Record<string, unknown>);
        return {
          output: { $metadata: {}, TagSet: [{ Key: 'GuardDutyMalwareScanStatus', Value: status }] },
          response: {},
        } as never;
      },
      { step: 'initialize', name: 'answerTagsLocally' },
    );
  };
  return { asked, hooks: { client } };
}

const opened: Container[] = [];
afterEach(async () => {
  for (const c of opened.splice(0)) await c.close();
});

describe('the aws profile picks its scanner from STRATUS_SCANNER', () => {
  it('guardduty: functions with storage read the tag of the object on the home bucket, with its client', async () => {
    // Prepare
    const { asked, hooks } = tagsAnsweredLocally('THREATS_FOUND');

    // Act
    const c = await createAwsContainer(
      awsConfig({ STRATUS_SCANNER: 'guardduty' }),
      { storage: s3Storage },
      hooks,
    );
    opened.push(c);

    // Assess
    expect(c.scanner).toBeInstanceOf(GuardDutyScanner);
    expect(c.scanner?.needsBytes).toBe(false);
    const home = c.blobs?.nodeId as string;
    await expect(c.scanner?.start({ nodeId: home, key: 'v/123' }).finish()).resolves.toEqual({
      verdict: 'infected',
      signature: 'GuardDuty',
    });
    expect(asked).toEqual([{ Bucket: 'stratus-blobs', Key: 'v/123' }]);
  });

  it('eicar stays the default, so a deploy without the flag changes nothing', async () => {
    const c = await createAwsContainer(awsConfig(), { storage: s3Storage });
    opened.push(c);
    expect(c.scanner?.name).toBe('eicar');
    expect(c.scanner?.needsBytes).toBe(true);
  });

  it('guardduty in a function that holds no storage (auth): it starts, and its scanner passes nothing', async () => {
    const c = await createAwsContainer(awsConfig({ STRATUS_SCANNER: 'guardduty' }), {});
    opened.push(c);
    await expect(c.scanner?.start({ nodeId: 's3-us-east-1', key: 'v/1' }).finish()).rejects.toThrow(
      UnavailableError,
    );
  });
});

describe('a runtime that stores versions GuardDuty cannot see refuses guardduty', () => {
  it('the local runtime stops with one configuration line, before it opens anything', async () => {
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-gd-')), 'data');
    const config = loadConfig({ STRATUS_SCANNER: 'guardduty', STRATUS_DATA_DIR: dir }) as LocalConfig;
    const refused = createLocalContainer(config);
    await expect(refused).rejects.toThrow(ConfigError);
    await expect(refused).rejects.toThrow(
      /^invalid configuration: STRATUS_SCANNER="guardduty": GuardDuty Malware Protection scans S3 buckets in AWS, .*\(use eicar or none\)$/,
    );
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('so does any composition with storage and no way to build the GuardDuty scanner', () => {
    const db = new MemoryDatabase();
    expect(() =>
      assemble(
        loadConfig({ STRATUS_SCANNER: 'guardduty', STRATUS_LOG_LEVEL: 'silent' }),
        {
          db,
          metadata: memoryMetadataOver(db),
          state: new MemoryStateStore(),
          blobs: new MemoryBlobStore(),
          throttleStore: new MemoryThrottleStore(),
          cache: new MemoryCache(),
          idp: undefined,
          log: createLogger('silent'),
        },
        {},
        async () => undefined,
      ),
    ).toThrow(ConfigError);
  });
});

describe('GuardDuty scanner: S3 refusing GetObjectTagging (the emulator does not enforce IAM)', () => {
  it('is no verdict, and says which permission the function lacks', async () => {
    const refusing = {
      send: () =>
        Promise.reject(
          Object.assign(new Error('Access Denied'), {
            name: 'AccessDenied',
            $metadata: { httpStatusCode: 403 },
          }),
        ),
    } as unknown as S3Client;
    const scanner = new GuardDutyScanner(() => ({ client: refusing, bucket: 'stratus-blobs' }));
    const finish = scanner.start({ nodeId: 's3-us-east-1', key: 'v/1' }).finish();
    await expect(finish).rejects.toThrow(UnavailableError);
    await expect(finish).rejects.toThrow(/needs s3:GetObjectTagging/);
  });
});
