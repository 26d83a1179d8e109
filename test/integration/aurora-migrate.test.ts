/**
 * The deploy-time migration as it runs for Aurora: the admin's credentials come from a Secrets
 * Manager secret (the emulator's), the schema is migrated on a real PostgreSQL, and the application
 * role is created with data rights only. The role is then used for real: it reads and writes, and
 * it cannot change the schema.
 */
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { handler } from '../../functions/deploy/migrate.ts';
import { migrations } from '../../shared/adapters/postgres/migrations.ts';
import { REGION, uid } from '../support/fixtures.ts';
import { PG_URL } from '../support/services.ts';

const dbName = uid('stratus_aurora_');
const role = uid('stratus_app_');
const admin = new URL(PG_URL);
const adminTo = (db: string) => {
  const u = new URL(PG_URL);
  u.pathname = `/${db}`;
  return u.toString();
};
const saved = { ...process.env };

async function sql<R extends pg.QueryResultRow>(url: string, text: string, params: unknown[] = []) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(text, params)).rows;
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  await sql(PG_URL, `create database ${dbName}`);
  const sm = new SecretsManagerClient({
    region: REGION,
    endpoint: inject('awsEndpoint'),
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  // The shape RDS writes into a generated cluster secret.
  const secret = await sm.send(
    new CreateSecretCommand({
      Name: uid('aurora-admin-'),
      SecretString: JSON.stringify({
        engine: 'postgres',
        username: admin.username || 'postgres',
        password: 'unused-under-trust-auth',
        host: admin.hostname,
        port: Number(admin.port || 5432),
        dbname: dbName,
      }),
    }),
  );
  Object.assign(process.env, {
    AWS_REGION: REGION,
    AWS_ENDPOINT_URL: inject('awsEndpoint'),
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    STRATUS_DATABASE_URL: `postgres://${role}@${admin.host}/${dbName}?sslmode=disable`,
    STRATUS_DATABASE_ADMIN_SECRET_ARN: secret.ARN,
  });
});

afterAll(async () => {
  process.env = { ...saved };
  await sql(PG_URL, `drop database if exists ${dbName} with (force)`);
  await sql(PG_URL, `drop role if exists ${role}`);
});

describe('deploy-time migration with an admin secret (Aurora)', () => {
  it('migrates with the admin credentials and creates the application role', async () => {
    const res = await handler({ RequestType: 'Create' });
    expect(res.Data).toEqual({ applied: String(migrations.length), latest: String(migrations.length) });
    const roles = await sql<{ rolcanlogin: boolean; rolsuper: boolean; rolcreaterole: boolean }>(
      PG_URL,
      'select rolcanlogin, rolsuper, rolcreaterole from pg_roles where rolname = $1',
      [role],
    );
    expect(roles).toEqual([{ rolcanlogin: true, rolsuper: false, rolcreaterole: false }]);
  });

  it('lets the application role read and write but not change the schema', async () => {
    const asApp = `postgres://${role}@${admin.host}/${dbName}`;
    const id = '00000000-0000-4000-8000-000000000001';
    await sql(
      asApp,
      `insert into users (id, email, email_key, role, root_folder_id, quota_bytes)
       values ($1, 'a@example.com', 'a@example.com', 'user', $1, 100)`,
      [id],
    );
    const rows = await sql<{ email: string }>(asApp, 'select email from users where id = $1', [id]);
    expect(rows).toEqual([{ email: 'a@example.com' }]);
    await expect(sql(asApp, 'create table intruder (x int)')).rejects.toThrow(/permission denied/);
    await expect(sql(asApp, 'drop table users')).rejects.toThrow(/must be owner/);
  });

  it('is idempotent: a second deploy applies nothing and keeps the role', async () => {
    const res = await handler({ RequestType: 'Update', PhysicalResourceId: 'stratus-schema' });
    expect(res).toEqual({
      PhysicalResourceId: 'stratus-schema',
      Data: { applied: '0', latest: String(migrations.length) },
    });
  });

  it('does nothing on delete (data outlives the stack)', async () => {
    const res = await handler({ RequestType: 'Delete', PhysicalResourceId: 'stratus-schema' });
    expect(res).toEqual({ PhysicalResourceId: 'stratus-schema' });
    const tables = await sql<{ n: string }>(
      adminTo(dbName),
      `select count(*)::text as n from information_schema.tables where table_name = 'users'`,
    );
    expect(tables).toEqual([{ n: '1' }]);
  });
});
