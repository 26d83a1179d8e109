/**
 * Deploy-time schema migrations: a CloudFormation custom resource (CDK Provider) calls this on
 * every deploy whose migration count changed, before the API functions are updated. Running DDL
 * here, once, instead of in every cold start keeps concurrent cold starts from racing on the schema
 * and keeps DDL rights out of the request path. Delete is a no-op: data outlives the stack.
 *
 * Aurora (`STRATUS_DATABASE_ADMIN_SECRET_ARN` set): the migration logs in as the cluster's admin
 * from its Secrets Manager secret, then makes sure the application role of STRATUS_DATABASE_URL
 * exists, may log in with IAM tokens (`rds_iam`) and may read and write the tables, nothing more.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { migrate, migrations } from '../../shared/adapters/postgres/migrations.ts';
import { openPgDatabase } from '../../shared/adapters/postgres/pg-database.ts';
import type { Database } from '../../shared/ports/database.ts';
import { databaseOptions } from '../aws-container.ts';

interface CustomResourceEvent {
  RequestType: 'Create' | 'Update' | 'Delete';
  PhysicalResourceId?: string;
}

const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Creates (if missing) the login role the functions use and grants it data rights on the public
 * schema, including tables later migrations add. `rds_iam` is granted where it exists (Aurora/RDS).
 */
export async function ensureAppRole(db: Database, role: string): Promise<void> {
  if (!ROLE_NAME.test(role)) throw new Error(`bad application role name ${role}`);
  const exists = await db.query('select 1 from pg_roles where rolname = $1', [role]);
  if (!exists.length) await db.exec(`create role ${role} login`);
  const iam = await db.query(`select 1 from pg_roles where rolname = 'rds_iam'`);
  if (iam.length) await db.exec(`grant rds_iam to ${role}`);
  await db.exec(`grant usage on schema public to ${role}`);
  await db.exec(`grant select, insert, update, delete on all tables in schema public to ${role}`);
  await db.exec(
    `alter default privileges in schema public grant select, insert, update, delete on tables to ${role}`,
  );
}

/** The admin's URL from the cluster secret, with the application URL's TLS mode. */
async function adminUrl(secretArn: string, region: string, appUrl: string): Promise<string> {
  const sm = new SecretsManagerClient({ region });
  const res = await sm.send(new GetSecretValueCommand({ SecretId: secretArn }));
  const s = JSON.parse(res.SecretString ?? '{}') as {
    username?: string;
    password?: string;
    host?: string;
    port?: number;
    dbname?: string;
  };
  if (!s.username || !s.password || !s.host) throw new Error('the admin secret lacks username/password/host');
  const user = encodeURIComponent(s.username);
  const pass = encodeURIComponent(s.password);
  const sslmode = new URL(appUrl).searchParams.get('sslmode') ?? 'verify-full';
  return `postgres://${user}:${pass}@${s.host}:${s.port ?? 5432}/${s.dbname ?? 'stratus'}?sslmode=${sslmode}`;
}

export async function handler(event: CustomResourceEvent) {
  const physical = event.PhysicalResourceId ?? 'stratus-schema';
  if (event.RequestType === 'Delete') return { PhysicalResourceId: physical };
  const url = process.env.STRATUS_DATABASE_URL;
  const region = process.env.AWS_REGION;
  if (!url || !region) throw new Error('STRATUS_DATABASE_URL and AWS_REGION must be set');
  const secretArn = process.env.STRATUS_DATABASE_ADMIN_SECRET_ARN;
  const db = await openPgDatabase(
    secretArn
      ? { connectionString: await adminUrl(secretArn, region, url), max: 1 }
      : { ...databaseOptions(url, region), max: 1 },
  );
  try {
    const applied = await migrate(db);
    if (secretArn) await ensureAppRole(db, decodeURIComponent(new URL(url).username));
    return {
      PhysicalResourceId: physical,
      Data: { applied: String(applied), latest: String(migrations.length) },
    };
  } finally {
    await db.close();
  }
}
