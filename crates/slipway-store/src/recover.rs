//! Runs whose owning process died are marked `Interrupted`; their logs stay readable. Runs still
//! waiting in the queue are left alone: the next server starts them.

use serde_json::{Value, json};
use sqlx::{Row, SqlitePool};

/// This process: pid and start time (clock ticks since boot), which together survive pid reuse.
pub(crate) fn me() -> (i64, i64) {
    let pid = std::process::id();
    (i64::from(pid), start_time(pid).unwrap_or(0))
}

fn start_time(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

pub(crate) fn alive(pid: i64, start: i64) -> bool {
    let Ok(pid) = u32::try_from(pid) else {
        return false;
    };
    match start_time(pid) {
        Some(s) => start == 0 || s == start,
        None => false,
    }
}

/// Marks every unfinished run whose owner is gone as failed with reason `Interrupted`.
pub(crate) async fn interrupted(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT uid, owner_pid, owner_start, object FROM runs WHERE status = 'Unknown' AND reason != ?",
    )
    .bind(crate::queue::PENDING)
    .fetch_all(pool)
    .await?;
    let now = std::time::SystemTime::now();
    for row in rows {
        let uid: String = row.get("uid");
        let pid: Option<i64> = row.get("owner_pid");
        let start: Option<i64> = row.get("owner_start");
        if alive(pid.unwrap_or(0), start.unwrap_or(0)) {
            continue;
        }
        let mut object: Value =
            serde_json::from_str(row.get::<&str, _>("object")).unwrap_or(json!({}));
        let when = humantime::format_rfc3339_seconds(now).to_string();
        object["status"]["conditions"] = json!([{ "type": "Succeeded", "status": "False", "reason": "Interrupted", "message": "the slipway process running this was killed; logs up to that moment are kept", "lastTransitionTime": when }]);
        object["status"]["completionTime"] = json!(when);
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE runs SET status = 'False', reason = 'Interrupted', finished_at = ?, object = ? WHERE uid = ?").bind(crate::millis(now)).bind(object.to_string()).bind(&uid).execute(&mut *tx).await?;
        sqlx::query("UPDATE task_runs SET status = 'False', reason = 'Interrupted', finished_at = ? WHERE (root_uid = ? OR parent_uid = ?) AND status = 'Unknown'").bind(crate::millis(now)).bind(&uid).bind(&uid).execute(&mut *tx).await?;
        tx.commit().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_stranger_is_not() {
        let (pid, start) = me();
        assert!(alive(pid, start));
        assert!(!alive(pid, start + 1));
        assert!(!alive(i64::from(u32::MAX), 0));
    }
}
