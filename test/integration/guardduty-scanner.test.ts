/**
 * The GuardDuty scanner over the real S3 protocol (the emulator): GuardDuty itself is not there, so
 * each test puts the tag GuardDuty would (PutObjectTagging `GuardDutyMalwareScanStatus`) and checks
 * what the scanner makes of it, of its absence, and of S3's errors. Then the whole path: an upload
 * verified with it is committed quarantined, and the rescan that GuardDuty's tag triggers in AWS
 * (maintenance task `rescan`) releases or condemns it.
 */
import { randomUUID } from 'node:crypto';
import { PutObjectCommand, PutObjectTaggingCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3Storage } from '../../functions/aws-storage.ts';
import { MemoryDatabase } from '../../shared/adapters/memory/memory-metadata.ts';
import { S3BlobStore } from '../../shared/adapters/s3/s3-blob-store.ts';
import { EICAR } from '../../shared/adapters/scanners/eicar-scanner.ts';
import { GuardDutyScanner, type S3Location } from '../../shared/adapters/scanners/guardduty-scanner.ts';
import { ConflictError, NotFoundError, UnavailableError } from '../../shared/domain/errors.ts';
import { createLogger } from '../../shared/observability/logger.ts';
import { Jobs } from '../../shared/services/jobs.ts';
import { NodeRegistry } from '../../shared/services/node-registry.ts';
import { createBucket, REGION, s3Client } from '../support/fixtures.ts';
import { buildHarness } from '../support/service-harness.ts';
import { freePort } from '../support/services.ts';

const s3 = s3Client();
afterAll(() => s3.destroy());

function recordingLog() {
  const lines: { level: string; msg: string; [k: string]: unknown }[] = [];
  return { lines, log: createLogger('debug', {}, (l) => lines.push(JSON.parse(l))) };
}

const tag = (bucket: string, key: string, status: string) =>
  s3.send(
    new PutObjectTaggingCommand({
      Bucket: bucket,
      Key: key,
      Tagging: { TagSet: [{ Key: 'GuardDutyMalwareScanStatus', Value: status }] },
    }),
  );

describe('GuardDuty scanner: the verdict is the tag GuardDuty put on the object', () => {
  let bucket: string;
  let scanner: GuardDutyScanner;
  let lines: ReturnType<typeof recordingLog>['lines'];
  const key = () => `v/${randomUUID()}`;
  const object = async (k = key()) => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: 'some bytes' }));
    return k;
  };
  const verdict = (k: string, nodeId = 's3-test') => scanner.start({ nodeId, key: k }).finish();

  beforeAll(async () => {
    bucket = await createBucket(s3);
    const rec = recordingLog();
    lines = rec.lines;
    scanner = new GuardDutyScanner((id) => (id === 's3-test' ? { client: s3, bucket } : undefined), rec.log);
  });

  it('NO_THREATS_FOUND is clean, THREATS_FOUND infected (signature GuardDuty)', async () => {
    // Prepare
    const clean = await object();
    const bad = await object();
    await tag(bucket, clean, 'NO_THREATS_FOUND');
    await tag(bucket, bad, 'THREATS_FOUND');

    // Act and assess
    await expect(verdict(clean)).resolves.toEqual({ verdict: 'clean' });
    await expect(verdict(bad)).resolves.toEqual({ verdict: 'infected', signature: 'GuardDuty' });
  });

  it('no tag yet is no answer: it throws (the version stays scanning), also beside other tags', async () => {
    const untagged = await object();
    await expect(verdict(untagged)).rejects.toThrow(UnavailableError);
    await expect(verdict(untagged)).rejects.toThrow(/has not tagged .* yet/);
    const otherTags = await object();
    await s3.send(
      new PutObjectTaggingCommand({
        Bucket: bucket,
        Key: otherTags,
        Tagging: { TagSet: [{ Key: 'owner', Value: 'ann' }] },
      }),
    );
    await expect(verdict(otherTags)).rejects.toThrow(UnavailableError);
    // Once GuardDuty tags it, the same question gets its answer.
    await tag(bucket, untagged, 'NO_THREATS_FOUND');
    await expect(verdict(untagged)).resolves.toEqual({ verdict: 'clean' });
  });

  it('reads no bytes: what it is fed does not matter, only the tag', async () => {
    expect(scanner.needsBytes).toBe(false);
    const k = await object();
    await tag(bucket, k, 'NO_THREATS_FOUND');
    const session = scanner.start({ nodeId: 's3-test', key: k });
    session.update(Buffer.from(EICAR));
    await expect(session.finish()).resolves.toEqual({ verdict: 'clean' });
  });

  it('UNSUPPORTED is quarantined for good (infected, never clean), with an error line saying why', async () => {
    const k = await object();
    await tag(bucket, k, 'UNSUPPORTED');
    await expect(verdict(k)).resolves.toEqual({
      verdict: 'infected',
      signature: 'GuardDuty: UNSUPPORTED (not scanned)',
    });
    const line = lines.find((l) => l.key === k);
    expect(line).toMatchObject({
      level: 'error',
      msg: 'GuardDuty cannot scan an object; its version is quarantined for good',
      bucket,
      status: 'UNSUPPORTED',
    });
    expect(String(line?.action)).toMatch(/password-protected/);
  });

  it.each([
    ['ACCESS_DENIED', /fix the Malware Protection plan's role/],
    ['FAILED', /internal error/],
  ])(
    '%s stays quarantined (throws) with an error line, and an on-demand rescan settles it',
    async (status, action) => {
      // Prepare
      const k = await object();
      await tag(bucket, k, status);

      // Act and assess: no verdict, logged as an error naming the object and what to do
      await expect(verdict(k)).rejects.toThrow(new RegExp(`no verdict .*${k}.*\\(${status}\\)`));
      const line = lines.find((l) => l.key === k);
      expect(line).toMatchObject({
        level: 'error',
        msg: 'GuardDuty gave no verdict; the version stays quarantined',
        status,
      });
      expect(String(line?.action)).toMatch(action);
      expect(String(line?.action)).toMatch(/send-object-malware-scan/);

      // An on-demand scan tags the object anew; the next rescan reads that.
      await tag(bucket, k, 'THREATS_FOUND');
      await expect(verdict(k)).resolves.toEqual({ verdict: 'infected', signature: 'GuardDuty' });
    },
  );

  it('an undocumented value is no verdict either', async () => {
    const k = await object();
    await tag(bucket, k, 'SOMETHING_NEW');
    await expect(verdict(k)).rejects.toThrow(UnavailableError);
    expect(String(lines.find((l) => l.key === k)?.action)).toMatch(/undocumented/);
  });

  it('S3 errors become domain errors: a missing object or bucket is not found, a dead endpoint unavailable', async () => {
    await expect(verdict(`v/${randomUUID()}`)).rejects.toThrow(NotFoundError);
    const gone = new GuardDutyScanner(() => ({ client: s3, bucket: `gone-${randomUUID().slice(0, 8)}` }));
    await expect(gone.start({ nodeId: 'x', key: 'v/1' }).finish()).rejects.toThrow(NotFoundError);
    const dead: S3Location = {
      client: new S3Client({
        region: REGION,
        endpoint: `http://127.0.0.1:${await freePort()}`,
        forcePathStyle: true,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
        maxAttempts: 1,
      }),
      bucket,
    };
    const down = new GuardDutyScanner(() => dead);
    await expect(down.start({ nodeId: 's3-down', key: 'v/1' }).finish()).rejects.toThrow(
      /storage node s3-down is unavailable/,
    );
    dead.client.destroy();
  });

  it('a node that is no S3 bucket gets no verdict', async () => {
    await expect(verdict('v/1', 'local-1')).rejects.toThrow(/local-1 is not an S3 bucket/);
  });
});

describe('GuardDuty scanner in the composition: uploads wait in quarantine for the tag', () => {
  it('commits an upload quarantined, and the rescan a tag asks for releases or condemns it', async () => {
    // Prepare: one S3 node (the emulator) and the scanner the aws profile builds over it
    const bucket = await createBucket(s3);
    const store = new S3BlobStore('s3-test', s3, bucket);
    const nodes = new NodeRegistry(
      [
        {
          id: 's3-test',
          kind: 's3',
          region: REGION,
          weight: 1,
          store,
          health: 'healthy',
          draining: false,
        },
      ],
      1,
    );
    const h = buildHarness(new MemoryDatabase(), {
      nodes,
      scanner: s3Storage.guardDutyScanner(nodes, createLogger('silent')),
    });
    const u = await h.user('gd@example.com');
    const jobs = new Jobs(h.c);
    const scanOf = async (fileId: string) => (await h.c.versions.versions(u, fileId)).versions[0];

    // Act: two uploads, verified and committed before GuardDuty has said anything
    const good = await h.put(u, u.rootFolderId, 'report.pdf', 'a harmless report');
    const bad = await h.put(u, u.rootFolderId, 'invoice.pdf', 'pretend this is malware');

    // Assess: both quarantined, not downloadable, and a rescan without tags changes nothing
    for (const f of [good, bad]) {
      expect((await scanOf(f.fileId))?.scanState).toBe('scanning');
      await expect(h.c.downloads.downloadUrl(u, f.fileId)).rejects.toThrow(ConflictError);
    }
    expect(await jobs.run('rescan')).toEqual({ rescanned: 0 });

    // GuardDuty tags them; the rescan its tag event triggers settles both
    const keyOf = async (fileId: string) => (await scanOf(fileId))?.blobKey as string;
    await tag(bucket, await keyOf(good.fileId), 'NO_THREATS_FOUND');
    await tag(bucket, await keyOf(bad.fileId), 'THREATS_FOUND');
    expect(await jobs.run('rescan')).toEqual({ rescanned: 2 });
    expect((await scanOf(good.fileId))?.scanState).toBe('clean');
    await expect(h.c.downloads.downloadUrl(u, good.fileId)).resolves.toMatchObject({
      url: expect.any(String),
    });
    expect((await scanOf(bad.fileId))?.scanState).toBe('infected');
    await expect(h.c.downloads.downloadUrl(u, bad.fileId)).rejects.toThrow(ConflictError);
  });
});
