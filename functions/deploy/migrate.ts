/**
 * Deploy-time schema migrations: a CloudFormation custom resource (CDK Provider) calls this on
 * every deploy whose migration count changed, before the API functions are updated. Running DDL
 * here, once, instead of in every cold start keeps concurrent cold starts from racing on the schema
 * and keeps DDL rights out of the request path. Delete is a no-op: data outlives the stack.
 *
 * Aurora (`STRATUS_DATABASE_ADMIN_SECRET_ARN` set): the migration logs in as the cluster's admin
 * from its Secrets Manager secret, then makes sure the application role of STRATUS_DATABASE_URL
 * exists, may log in with IAM tokens (`rds_iam`) and may read and write the tables, nothing more.
 *
 * Aurora DSQL: the migration alone logs in as `admin` (`dsql:DbConnectAdmin`), then makes sure the
 * application role of STRATUS_DATABASE_URL exists, is mapped (`AWS IAM GRANT`) to exactly the IAM
 * roles of the functions the stack names in the resource's `appRoleArns`, and may read and write
 * every table, nothing more. The functions log in as that role (`dsql:DbConnect`).
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { migrate, migrations } from '../../shared/adapters/postgres/migrations.ts';
import type { PgOptions } from '../../shared/adapters/postgres/pg-database.ts';
import { openPgDatabase } from '../../shared/adapters/postgres/pg-database.ts';
import type { Database } from '../../shared/ports/database.ts';
import { DSQL_ADMIN_USER, databaseOptions } from '../database-options.ts';

interface CustomResourceEvent {
  RequestType: 'Create' | 'Update' | 'Delete';
  PhysicalResourceId?: string;
  /** DSQL: the IAM roles that connect as the application role (set by the stack). */
  ResourceProperties?: { appRoleArns?: string[] };
}

const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const IAM_ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

/**
 * How the migration connects: as given for PostgreSQL and Aurora (whose admin comes from the
 * secret), as `admin` with a `DbConnectAdmin` token for DSQL, whatever user the URL names.
 */
export function migrationDatabaseOptions(url: string, region: string): PgOptions {
  const asGiven = databaseOptions(url, region);
  if (asGiven.dialect !== 'dsql') return { ...asGiven, max: 1 };
  const admin = new URL(url);
  admin.username = DSQL_ADMIN_USER;
  return { ...databaseOptions(admin.toString(), region), max: 1 };
}

/**
 * Aurora DSQL: the application role logs in only through IAM (`AWS IAM GRANT` maps IAM roles to
 * it; mappings of roles the stack no longer names are revoked) and gets data rights on every table
 * of the public schema, granted table by table after each migration, so new tables are covered.
 */
export async function ensureDsqlAppRole(db: Database, role: string, iamRoleArns: string[]): Promise<void> {
  if (!ROLE_NAME.test(role) || role === DSQL_ADMIN_USER) throw new Error(`bad application role name ${role}`);
  for (const arn of iamRoleArns) if (!IAM_ROLE_ARN.test(arn)) throw new Error(`bad IAM role ARN ${arn}`);
  const exists = await db.query('select 1 from pg_roles where rolname = $1', [role]);
  if (!exists.length) await db.exec(`create role ${role} with login`);
  const mapped = new Set(
    (
      await db.query<{ arn: string }>('select arn from sys.iam_pg_role_mappings where pg_role_name = $1', [
        role,
      ])
    ).map((r) => r.arn),
  );
  for (const arn of iamRoleArns) if (!mapped.has(arn)) await db.exec(`aws iam grant ${role} to '${arn}'`);
  for (const arn of mapped)
    if (!iamRoleArns.includes(arn) && IAM_ROLE_ARN.test(arn))
      await db.exec(`aws iam revoke ${role} from '${arn}'`);
  await db.exec(`grant usage on schema public to ${role}`);
  const tables = await db.query<{ name: string }>(
    `select table_name as name from information_schema.tables
     where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`,
  );
  for (const { name } of tables) {
    if (!ROLE_NAME.test(name)) throw new Error(`unexpected table name ${name}`);
    await db.exec(`grant select, insert, update, delete on public.${name} to ${role}`);
  }
}

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
  const options = secretArn
    ? { connectionString: await adminUrl(secretArn, region, url), max: 1 }
    : migrationDatabaseOptions(url, region);
  const appRole = decodeURIComponent(new URL(url).username);
  const db = await openPgDatabase(options);
  try {
    const applied = await migrate(db);
    if (secretArn) await ensureAppRole(db, appRole);
    else if (options.dialect === 'dsql')
      await ensureDsqlAppRole(db, appRole, event.ResourceProperties?.appRoleArns ?? []);
    return {
      PhysicalResourceId: physical,
      Data: { applied: String(applied), latest: String(migrations.length) },
    };
  } finally {
    await db.close();
  }
}
