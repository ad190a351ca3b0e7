//! Cluster membership rows: one per node, renewed by heartbeat, live while the lease holds.

use super::SqlStore;
use super::store::contended;
use crate::{MemberRow, MembershipStore, Result};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

/// Roles as stored: comma-joined, the empty string for none.
fn join_roles(roles: &[String]) -> String {
    roles.join(",")
}

fn split_roles(roles: &str) -> Vec<String> {
    if roles.is_empty() {
        return Vec::new();
    }
    roles.split(',').map(str::to_owned).collect()
}

fn member_row(row: AnyRow) -> MemberRow {
    MemberRow {
        member_id: row.get("member_id"),
        address: row.get("address"),
        roles: split_roles(&row.get::<String, _>("roles")),
        started_at: row.get("started_at"),
        heartbeat_at: row.get("heartbeat_at"),
        expires_at: row.get("expires_at"),
    }
}

#[async_trait]
impl MembershipStore for SqlStore {
    async fn heartbeat(&self, member: &MemberRow) -> Result<()> {
        let sql = format!(
            "INSERT INTO cluster_members (member_id, address, roles, started_at, heartbeat_at, expires_at) VALUES (?, ?, ?, ?, ?, ?){}",
            self.dialect.upsert(
                "member_id",
                &[
                    "address",
                    "roles",
                    "started_at",
                    "heartbeat_at",
                    "expires_at"
                ]
            )
        );
        let sql = self.q(&sql);
        contended(|| async {
            let query = sqlx::query(&sql)
                .bind(&member.member_id)
                .bind(&member.address)
                .bind(join_roles(&member.roles))
                .bind(member.started_at)
                .bind(member.heartbeat_at)
                .bind(member.expires_at);
            self.exec(query).await?;
            Ok(())
        })
        .await
    }

    async fn members(&self) -> Result<Vec<MemberRow>> {
        let rows = sqlx::query(
            "SELECT member_id, address, roles, started_at, heartbeat_at, expires_at FROM cluster_members ORDER BY member_id",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(member_row).collect())
    }

    async fn leave(&self, member_id: &str) -> Result<()> {
        let sql = self.q("DELETE FROM cluster_members WHERE member_id = ?");
        self.exec(sqlx::query(&sql).bind(member_id)).await?;
        Ok(())
    }

    async fn forget_members_expired_before(&self, unix_ms: i64) -> Result<u64> {
        let sql = self.q("DELETE FROM cluster_members WHERE expires_at < ?");
        self.exec(sqlx::query(&sql).bind(unix_ms)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_join_and_split_back() {
        for roles in [
            vec![],
            vec!["history".to_owned()],
            vec!["frontend".to_owned(), "matching".to_owned()],
        ] {
            assert_eq!(split_roles(&join_roles(&roles)), roles);
        }
    }
}
