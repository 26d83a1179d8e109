/**
 * The real composition root over a given database, with in-memory blobs: for service-level suites
 * (the metadata contract and the property tests). Bytes are written straight into the memory node.
 */

import { createHash, randomUUID } from 'node:crypto';
import { assemble, type Container, type Parts } from '../../functions/container.ts';
import { MemoryBlobStore } from '../../shared/adapters/memory/memory-blob-store.ts';
import { MemoryCache } from '../../shared/adapters/memory/memory-cache.ts';
import { MemoryDatabase, memoryMetadataOver } from '../../shared/adapters/memory/memory-metadata.ts';
import { MemoryStateStore } from '../../shared/adapters/memory/memory-state-store.ts';
import { MemoryThrottleStore } from '../../shared/adapters/memory/memory-throttle-store.ts';
import { SqlStateStore } from '../../shared/adapters/postgres/sql-state-store.ts';
import { loadConfig } from '../../shared/config/config.ts';
import type { Principal } from '../../shared/domain/model.ts';
import type { UploadSession } from '../../shared/domain/upload-session.ts';
import { createLogger } from '../../shared/observability/logger.ts';
import type { Cache } from '../../shared/ports/cache.ts';
import type { Database } from '../../shared/ports/database.ts';
import type { Scanner } from '../../shared/ports/scanner.ts';
import type { NodeRegistry } from '../../shared/services/node-registry.ts';

/**
 * The real composition root around the parts a test cares about (database, state store, blobs, …);
 * everything else in memory, logs silent.
 */
export function composeForTest(
  env: Record<string, string>,
  parts: Pick<Parts, 'db' | 'state' | 'blobs'> & Partial<Parts>,
): Container {
  return assemble(
    loadConfig({ STRATUS_LOG_LEVEL: 'silent', ...env }),
    {
      throttleStore: new MemoryThrottleStore(),
      cache: new MemoryCache(),
      idp: undefined,
      log: createLogger('silent'),
      ...parts,
    },
    {},
    async () => undefined,
  );
}

export interface Harness {
  c: Container;
  blobs: MemoryBlobStore;
  user(email: string, role?: 'admin' | 'user'): Promise<Principal & { rootFolderId: string }>;
  put(
    p: Principal,
    parentId: string,
    name: string,
    data: Buffer | string,
    extra?: { baseVersionId?: string | null; onConflict?: 'fail' | 'copy' },
  ): Promise<{ fileId: string; versionId: string; name: string }>;
}

export function buildHarness(
  db: Database,
  opts: {
    cache?: Cache;
    quotaBytes?: number;
    scanner?: Scanner;
    blobs?: MemoryBlobStore;
    nodes?: NodeRegistry;
  } = {},
): Harness {
  const config = loadConfig({
    STRATUS_LOG_LEVEL: 'silent',
    STRATUS_DEFAULT_QUOTA_BYTES: String(opts.quotaBytes ?? 1024 ** 3),
  });
  const blobs = opts.blobs ?? new MemoryBlobStore();
  const c = assemble(
    config,
    {
      db,
      // The in-memory metadata runs no SQL: its stores and an in-memory state store instead.
      ...(db instanceof MemoryDatabase
        ? { metadata: memoryMetadataOver(db), state: new MemoryStateStore() }
        : { state: new SqlStateStore(db) }),
      blobs,
      throttleStore: new MemoryThrottleStore(),
      cache: opts.cache ?? new MemoryCache(),
      ...(opts.scanner ? { scanner: opts.scanner } : {}),
      ...(opts.nodes ? { nodes: opts.nodes } : {}),
      idp: undefined,
      log: createLogger('silent'),
    },
    {},
    async () => undefined,
  );
  return {
    c,
    blobs,
    async user(email, role = 'user') {
      const u = await c.users.ensure({
        id: randomUUID(),
        email,
        role,
        quotaBytes: opts.quotaBytes ?? 1024 ** 3,
      });
      return {
        userId: u.id,
        role,
        tokenId: randomUUID(),
        expiresAt: 9_999_999_999,
        rootFolderId: u.rootFolderId,
      };
    },
    async put(p, parentId, name, data, extra = {}) {
      const body = Buffer.from(data);
      const up = await c.uploads.createUpload(p, {
        parentId,
        name,
        size: body.length,
        sha256: createHash('sha256').update(body).digest('hex'),
        contentType: 'application/octet-stream',
        ...extra,
      });
      const session = await c.state.get<UploadSession>(`upload#${up.uploadId}`, 's');
      if (!session) throw new Error('session vanished');
      await (c.nodes.store(session.data.nodeId) ?? blobs).write(session.data.blobKey, body);
      const done = await c.uploads.completeUpload(p, up.uploadId, [{ partNumber: 1, etag: 'x' }]);
      if (done.status !== 'committed') throw new Error(`upload ${up.uploadId} is ${done.status}`);
      return { fileId: done.fileId, versionId: done.versionId, name: done.name };
    },
  };
}
