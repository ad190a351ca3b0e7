//! The order a queue hands out its tasks, as Temporal's priorities and fairness ask: a
//! higher priority level (a lower number) first; within a level, the fairness keys take turns,
//! each key handing out as many tasks a turn as its weight; within a key, first in first out.

use chronicle_common::DispatchTask;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// The level of a task without one: the middle of Temporal's five.
pub const DEFAULT_PRIORITY: i32 = 3;

fn level(task: &DispatchTask) -> i32 {
    if task.priority > 0 {
        task.priority
    } else {
        DEFAULT_PRIORITY
    }
}

/// Tasks a key hands out in one turn: its weight, rounded, at least one.
fn turn_size(task: &DispatchTask) -> u32 {
    let weight = task.fairness_weight;
    if weight.is_finite() && weight > 1.0 {
        // Weights are small numbers; a huge one still takes turns, in long ones.
        weight.round().min(1000.0) as u32
    } else {
        1
    }
}

#[derive(Debug, Default)]
struct Level {
    /// Keys in turn order; the front one is handing out.
    turns: VecDeque<String>,
    tasks: HashMap<String, VecDeque<DispatchTask>>,
    /// What the front key may still hand out this turn.
    left_in_turn: u32,
}

impl Level {
    fn push(&mut self, task: DispatchTask) {
        let key = task.fairness_key.clone();
        let queue = self.tasks.entry(key.clone()).or_default();
        if queue.is_empty() {
            self.turns.push_back(key);
        }
        queue.push_back(task);
    }

    fn pop(&mut self) -> Option<DispatchTask> {
        let key = self.turns.front()?.clone();
        let queue = self.tasks.get_mut(&key)?;
        let task = queue.pop_front()?;
        if self.left_in_turn == 0 {
            self.left_in_turn = turn_size(&task);
        }
        self.left_in_turn -= 1;
        let emptied = queue.is_empty();
        if emptied {
            self.tasks.remove(&key);
        }
        if emptied || self.left_in_turn == 0 {
            self.turns.pop_front();
            if !emptied {
                self.turns.push_back(key);
            }
            self.left_in_turn = 0;
        }
        Some(task)
    }
}

/// A queue's tasks in memory.
#[derive(Debug, Default)]
pub(crate) struct Ordered {
    levels: BTreeMap<i32, Level>,
    len: usize,
}

impl Ordered {
    pub fn push(&mut self, task: DispatchTask) {
        self.levels.entry(level(&task)).or_default().push(task);
        self.len += 1;
    }

    pub fn pop(&mut self) -> Option<DispatchTask> {
        let mut entry = self.levels.first_entry()?;
        let task = entry.get_mut().pop();
        if entry.get().tasks.is_empty() {
            entry.remove();
        }
        if task.is_some() {
            self.len -= 1;
        }
        task
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &DispatchTask> + '_ {
        self.levels
            .values()
            .flat_map(|level| level.tasks.values().flatten())
    }

    /// Every task, in the order they would be handed out.
    pub fn into_tasks(mut self) -> Vec<DispatchTask> {
        std::iter::from_fn(|| self.pop()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: i64, priority: i32, key: &str, weight: f32) -> DispatchTask {
        DispatchTask {
            task_id: id,
            priority,
            fairness_key: key.into(),
            fairness_weight: weight,
            ..Default::default()
        }
    }

    fn order(tasks: Vec<DispatchTask>) -> Vec<i64> {
        let mut ordered = Ordered::default();
        for t in tasks {
            ordered.push(t);
        }
        assert_eq!(ordered.len(), ordered.iter().count());
        ordered.into_tasks().iter().map(|t| t.task_id).collect()
    }

    #[test]
    fn higher_priority_levels_go_first_and_unset_is_the_middle() {
        let tasks = vec![
            task(1, 5, "", 0.0),
            task(2, 0, "", 0.0),
            task(3, 1, "", 0.0),
            task(4, 3, "", 0.0),
            task(5, 1, "", 0.0),
        ];
        assert_eq!(order(tasks), [3, 5, 2, 4, 1]);
    }

    #[test]
    fn fairness_keys_take_turns_within_a_level() {
        let tasks = vec![
            task(1, 0, "a", 0.0),
            task(2, 0, "a", 0.0),
            task(3, 0, "a", 0.0),
            task(4, 0, "b", 0.0),
            task(5, 0, "b", 0.0),
        ];
        assert_eq!(order(tasks), [1, 4, 2, 5, 3]);
    }

    #[test]
    fn a_heavier_key_hands_out_more_a_turn() {
        let tasks = vec![
            task(1, 0, "heavy", 2.0),
            task(2, 0, "heavy", 2.0),
            task(3, 0, "heavy", 2.0),
            task(4, 0, "light", 1.0),
            task(5, 0, "light", 1.0),
        ];
        assert_eq!(order(tasks), [1, 2, 4, 3, 5]);
    }
}
