/**
 * Aurora DSQL and Aurora/RDS connections without a password authenticate with IAM tokens; other
 * PostgreSQL URLs are used as given. On DSQL the functions sign DbConnect for the application role
 * and only the migration signs DbConnectAdmin.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { databaseOptions } from '../../functions/aws-container.ts';
import { migrationDatabaseOptions } from '../../functions/deploy/migrate.ts';

describe('databaseOptions', () => {
  const saved = { ...process.env };
  beforeEach(() => {
    process.env.AWS_ACCESS_KEY_ID = 'AKIDEXAMPLE';
    process.env.AWS_SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
  });
  afterEach(() => {
    process.env = { ...saved };
  });

  const tokenOf = async (o: { password?: () => Promise<string> }) =>
    new URL(`https://${await (o.password as () => Promise<string>)()}`);

  it('signs a fresh DbConnect token per connection for the application role on a DSQL endpoint', async () => {
    const o = databaseOptions(
      'postgres://stratus_app@abc123xyz.dsql.eu-west-1.on.aws:5432/postgres?sslmode=require',
      'eu-west-1',
    );
    expect(o.dialect).toBe('dsql');
    const url = await tokenOf(o);
    expect(url.hostname).toBe('abc123xyz.dsql.eu-west-1.on.aws');
    expect(url.searchParams.get('Action')).toBe('DbConnect');
    expect(url.searchParams.get('X-Amz-Credential')).toContain('AKIDEXAMPLE/');
    expect(url.searchParams.get('X-Amz-Credential')).toContain('/eu-west-1/dsql/aws4_request');
    expect(url.searchParams.get('X-Amz-Expires')).toBe('900');
    // A new token per connection (the pool calls this for each one).
    expect(await (o.password as () => Promise<string>)()).toMatch(/Action=DbConnect&/);
  });

  it('signs DbConnectAdmin only for the admin user, which only the migration connects as', async () => {
    const app = 'postgres://stratus_app@abc123xyz.dsql.eu-west-1.on.aws:5432/postgres?sslmode=require';
    const admin = databaseOptions(app.replace('stratus_app@', 'admin@'), 'eu-west-1');
    expect((await tokenOf(admin)).searchParams.get('Action')).toBe('DbConnectAdmin');
    const migration = migrationDatabaseOptions(app, 'eu-west-1');
    expect(new URL(migration.connectionString).username).toBe('admin');
    expect(migration.max).toBe(1);
    expect((await tokenOf(migration)).searchParams.get('Action')).toBe('DbConnectAdmin');
    // Any other store: the migration connects as the URL says (Aurora's admin comes from its secret).
    const pgUrl = 'postgres://app:secret@db.example.com:5432/stratus';
    expect(migrationDatabaseOptions(pgUrl, 'eu-west-1').connectionString).toBe(pgUrl);
  });

  it('leaves any other PostgreSQL alone (password in the URL, no signer)', () => {
    const o = databaseOptions(
      'postgres://app:secret@db.cluster-abc.eu-west-1.rds.amazonaws.com:5432/stratus',
      'eu-west-1',
    );
    expect(o.password).toBeUndefined();
    expect(o.dialect).toBeUndefined();
    expect(o.connectionString).toContain('rds.amazonaws.com');
  });

  it('signs an rds-db:connect token for the URL user of an Aurora endpoint without a password', async () => {
    const o = databaseOptions(
      'postgres://stratus_app@meta.cluster-abc.eu-west-1.rds.amazonaws.com:5432/stratus?sslmode=verify-full',
      'eu-west-1',
    );
    expect(o.dialect).toBeUndefined();
    const token = await (o.password as () => Promise<string>)();
    const url = new URL(`https://${token}`);
    expect(url.hostname).toBe('meta.cluster-abc.eu-west-1.rds.amazonaws.com');
    expect(url.port).toBe('5432');
    expect(url.searchParams.get('Action')).toBe('connect');
    expect(url.searchParams.get('DBUser')).toBe('stratus_app');
    expect(url.searchParams.get('X-Amz-Credential')).toContain('/eu-west-1/rds-db/aws4_request');
  });
});
