/**
 * S3 cannot make a presigned URL single-use, so a GET asked to be single-use gets a short life
 * instead (SINGLE_USE_FALLBACK_TTL_SECONDS); other GETs keep the lifetime asked for. Signing is
 * offline: no endpoint is contacted.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { S3BlobStore, SINGLE_USE_FALLBACK_TTL_SECONDS } from '../../shared/adapters/s3/s3-blob-store.ts';

const store = new S3BlobStore(
  's3-test',
  new S3Client({
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
  }),
  'bucket',
);
const input = { key: 'v/k', expiresInSeconds: 60, fileName: 'a.txt', contentType: 'text/plain' };

describe('S3 presignGet', () => {
  it('caps a single-use GET at the fallback lifetime, in the URL and in expiresAt', async () => {
    const before = Date.now();
    const signed = await store.presignGet({ ...input, singleUse: true });
    expect(SINGLE_USE_FALLBACK_TTL_SECONDS).toBeLessThanOrEqual(15);
    expect(new URL(signed.url).searchParams.get('X-Amz-Expires')).toBe(
      String(SINGLE_USE_FALLBACK_TTL_SECONDS),
    );
    expect(signed.expiresAt.getTime()).toBeLessThanOrEqual(
      Date.now() + SINGLE_USE_FALLBACK_TTL_SECONDS * 1000,
    );
    expect(signed.expiresAt.getTime()).toBeGreaterThanOrEqual(
      before + SINGLE_USE_FALLBACK_TTL_SECONDS * 1000 - 1000,
    );
  });

  it('keeps a shorter lifetime asked for, and leaves multi-use GETs as asked', async () => {
    const short = await store.presignGet({ ...input, expiresInSeconds: 5, singleUse: true });
    expect(new URL(short.url).searchParams.get('X-Amz-Expires')).toBe('5');
    const multi = await store.presignGet(input);
    expect(new URL(multi.url).searchParams.get('X-Amz-Expires')).toBe('60');
  });
});
