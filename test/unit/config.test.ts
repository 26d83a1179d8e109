import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../shared/config/config.ts';

describe('config', () => {
  it('defaults to the local profile on embedded settings', () => {
    const c = loadConfig({});
    expect(c.STRATUS_PROFILE).toBe('local');
    if (c.STRATUS_PROFILE !== 'local') throw new Error('unreachable');
    expect(c.PORT).toBe(8787);
    expect(c.publicUrl).toBe('http://127.0.0.1:8787');
    expect(c.STRATUS_DATA_DIR.endsWith('.stratus')).toBe(true);
    expect(c.STRATUS_KDF_COST).toBe(17);
    expect(c.STRATUS_LOCAL_NODES).toBe(3);
    expect(c.STRATUS_REPLICATION_FACTOR).toBe(2);
    // The documented default quota: 10 GiB (it once was 10 TiB by a slip of one factor).
    expect(c.STRATUS_DEFAULT_QUOTA_BYTES).toBe(10 * 2 ** 30);
  });

  it('reads PORT, STRATUS_DATA_DIR and the admin email (normalised)', () => {
    const c = loadConfig({
      PORT: '9000',
      STRATUS_DATA_DIR: '/tmp/x',
      STRATUS_ADMIN_EMAIL: ' Boss@Example.COM ',
      STRATUS_ADMIN_PASSWORD: 'correct horse battery',
    });
    expect(c).toMatchObject({
      PORT: 9000,
      STRATUS_DATA_DIR: '/tmp/x',
      STRATUS_ADMIN_EMAIL: 'boss@example.com',
    });
  });

  it.each([
    [{ PORT: 'eighty' }, /^invalid configuration: PORT="eighty": /],
    [{ PORT: '70000' }, /^invalid configuration: PORT="70000": /],
    [{ STRATUS_PART_SIZE_BYTES: '1024' }, /STRATUS_PART_SIZE_BYTES="1024"/],
    [{ STRATUS_ADMIN_EMAIL: 'not-an-email' }, /STRATUS_ADMIN_EMAIL/],
    // the first admin needs both: an address alone would let whoever registers it first in
    [
      { STRATUS_ADMIN_EMAIL: 'boss@example.com' },
      /^invalid configuration: STRATUS_ADMIN_PASSWORD: required with STRATUS_ADMIN_EMAIL/,
    ],
    [
      { STRATUS_ADMIN_PASSWORD: 'correct horse battery' },
      /^invalid configuration: STRATUS_ADMIN_EMAIL: required/,
    ],
    [
      { STRATUS_ADMIN_EMAIL: 'boss@example.com', STRATUS_ADMIN_PASSWORD: 'short' },
      /^invalid configuration: STRATUS_ADMIN_PASSWORD: at least 8 characters/,
    ],
    [{ STRATUS_PROFILE: 'cloud' }, /STRATUS_PROFILE/],
    [{ STRATUS_PROFILE: 'aws' }, /^invalid configuration: AWS_REGION: /],
    [{ STRATUS_NODES: '[{"id":"x","kind":"ftp"}]' }, /^invalid configuration: STRATUS_NODES/],
    [{ STRATUS_NODES: 'not json' }, /^invalid configuration: STRATUS_NODES="not json": not JSON/],
  ])('stops with one line naming the bad setting: %j', (env, message) => {
    let error: unknown;
    try {
      loadConfig(env);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('\n');
  });

  it('reads a list of storage nodes of any kind', () => {
    const c = loadConfig({
      STRATUS_NODES: JSON.stringify([
        { id: 'disk-b', kind: 'localfs', path: '/mnt/b', region: 'home', weight: 2 },
        {
          id: 'eu',
          kind: 's3',
          bucket: 'stratus-eu',
          region: 'eu-west-1',
          endpoint: 'https://s3.example.com',
        },
      ]),
    });
    expect(c.STRATUS_NODES.map((n) => [n.id, n.kind])).toEqual([
      ['disk-b', 'localfs'],
      ['eu', 's3'],
    ]);
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '' })).toMatchObject({ PORT: 8787 });
  });
});
