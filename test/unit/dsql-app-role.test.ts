/**
 * The deploy-time migration's DSQL role setup: the application role is created once, mapped to
 * exactly the functions' IAM roles (`AWS IAM GRANT` / `AWS IAM REVOKE`), and granted data rights
 * (select, insert, update, delete) on each table, nothing more. DSQL is not available offline, so
 * the statements are checked against a recording database that answers the catalog queries.
 */
import { describe, expect, it } from 'vitest';
import { ensureDsqlAppRole } from '../../functions/deploy/migrate.ts';
import type { Database } from '../../shared/ports/database.ts';

const FILES = 'arn:aws:iam::123456789012:role/Stratus-prod-Stateless-FnfilesServiceRole-ABC';
const ADMIN = 'arn:aws:iam::123456789012:role/Stratus-prod-Stateless-FnadminServiceRole-DEF';
const GONE = 'arn:aws:iam::123456789012:role/Stratus-prod-Stateless-FnoldServiceRole-GHI';

function recordingDb(catalog: { roleExists: boolean; mapped: string[]; tables: string[] }) {
  const statements: string[] = [];
  const db = {
    dialect: 'dsql',
    async query(sql: string, params?: readonly unknown[]) {
      statements.push(sql.replace(/\s+/g, ' ').trim());
      if (sql.includes('from pg_roles')) return catalog.roleExists ? [{ '?column?': 1 }] : [];
      if (sql.includes('sys.iam_pg_role_mappings')) {
        expect(params).toEqual(['stratus_app']);
        return catalog.mapped.map((arn) => ({ arn }));
      }
      if (sql.includes('information_schema.tables')) return catalog.tables.map((name) => ({ name }));
      throw new Error(`unexpected query ${sql}`);
    },
    async exec(sql: string) {
      statements.push(sql);
    },
  } as unknown as Database;
  return { db, statements, ddl: () => statements.filter((x) => !/^select/.test(x)) };
}

describe('ensureDsqlAppRole', () => {
  it('creates the role, maps each function role and grants only DML, table by table', async () => {
    const r = recordingDb({ roleExists: false, mapped: [], tables: ['items', 'users'] });
    await ensureDsqlAppRole(r.db, 'stratus_app', [FILES, ADMIN]);
    expect(r.ddl()).toEqual([
      'create role stratus_app with login',
      `aws iam grant stratus_app to '${FILES}'`,
      `aws iam grant stratus_app to '${ADMIN}'`,
      'grant usage on schema public to stratus_app',
      'grant select, insert, update, delete on public.items to stratus_app',
      'grant select, insert, update, delete on public.users to stratus_app',
    ]);
    // Data rights only: no DDL, ownership, role management or superuser rights for the role.
    expect(r.ddl().join('\n')).not.toMatch(
      /\b(create on|all privileges|superuser|createrole|owner|truncate)\b/i,
    );
  });

  it('is idempotent and follows the stack: keeps existing mappings, revokes roles it no longer names', async () => {
    const r = recordingDb({ roleExists: true, mapped: [FILES, GONE], tables: ['items'] });
    await ensureDsqlAppRole(r.db, 'stratus_app', [FILES, ADMIN]);
    expect(r.ddl()).toEqual([
      `aws iam grant stratus_app to '${ADMIN}'`,
      `aws iam revoke stratus_app from '${GONE}'`,
      'grant usage on schema public to stratus_app',
      'grant select, insert, update, delete on public.items to stratus_app',
    ]);
  });

  it('refuses names that would leave the statement (SQL is built from them)', async () => {
    const r = recordingDb({ roleExists: true, mapped: [], tables: [] });
    await expect(ensureDsqlAppRole(r.db, 'admin', [FILES])).rejects.toThrow(/bad application role/);
    await expect(ensureDsqlAppRole(r.db, 'x; drop table users', [FILES])).rejects.toThrow(
      /bad application role/,
    );
    await expect(ensureDsqlAppRole(r.db, 'stratus_app', [`${FILES}'; drop table users; --`])).rejects.toThrow(
      /bad IAM role ARN/,
    );
    expect(r.ddl()).toEqual([]);
  });
});
