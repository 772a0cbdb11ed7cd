//! The list of conformance cases, written once: it generates one `#[tokio::test]` per case in a
//! backend's test file (through [`conformance!`](crate::conformance)) and the table that
//! `cargo xtask conformance` runs.

use crate::backend::Backend;
use futures::future::BoxFuture;
use std::time::Duration;

/// A conformance case as a plain function.
pub type CaseFn = for<'a> fn(&'a dyn Backend) -> BoxFuture<'a, ()>;

/// A named case.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// The case's name (its function's name, unique in the suite).
    pub name: &'static str,
    /// The case itself.
    pub run: CaseFn,
}

/// The longest a case may take (in the case's clock: virtual when paused) before it is reported
/// as hung instead of hanging the test run.
const CASE_DEADLINE: Duration = Duration::from_secs(300);

/// Property-model cases are named with this prefix: they run as many sequences as the backend
/// asks for, each with its own deadline, so their own deadline grows with that number.
const MODEL_PREFIX: &str = "model_";

/// The deadline of the case called `name` on `backend`.
fn deadline(backend: &dyn Backend, name: &str) -> Duration {
    if name.starts_with(MODEL_PREFIX) {
        CASE_DEADLINE + crate::cases::models::SEQUENCE_DEADLINE * backend.model_cases()
    } else {
        CASE_DEADLINE
    }
}

/// Runs one case: pauses tokio's clock when the backend follows it, and fails a hung case
/// instead of waiting forever.
#[allow(clippy::print_stderr, reason = "a skipped case says so on the test output")]
pub async fn run_case(backend: &dyn Backend, name: &str, case: CaseFn) {
    if let Some(reason) = backend.unavailable() {
        eprintln!("skipping conformance case {name} on {}: {reason}", backend.name());
        return;
    }
    if backend.paused_clock() {
        tokio::time::pause();
    }
    let deadline = deadline(backend, name);
    if tokio::time::timeout(deadline, case(backend)).await.is_err() {
        panic!("conformance case {name} on {} did not finish within {deadline:?}", backend.name());
    }
}

/// Every case, in the suite's order.
pub fn all_cases() -> Vec<Case> {
    crate::__busmq_cases!(registry())
}

#[doc(hidden)]
#[macro_export]
macro_rules! __busmq_cases {
    ($mode:ident $args:tt) => {
        $crate::__busmq_cases! {@expand $mode $args [
            bus::bus_connects_online_and_disconnects_offline,
            bus::second_connect_is_already_connected,
            bus::disconnect_is_idempotent_and_ends_offline,
            bus::bus_can_connect_again_after_disconnect,
            bus::operations_need_a_connected_bus,
            bus::disconnect_detaches_and_returns_undelivered_messages,
            lifecycle::attach_detach_events_in_order,
            lifecycle::attach_reports_whether_queue_existed,
            lifecycle::concurrent_first_attach_sees_one_creator,
            lifecycle::later_attacher_adopts_stored_ttl,
            lifecycle::attach_twice_is_already_attached,
            lifecycle::queue_does_not_expire_before_ttl,
            lifecycle::queue_expires_ttl_after_last_detach,
            lifecycle::attached_queue_outlives_its_ttl,
            lifecycle::client_that_never_renews_counts_as_detached_after_ttl,
            lifecycle::detach_twice_is_a_no_op,
            lifecycle::detach_stops_consuming,
            lifecycle::close_destroys_queue_and_messages,
            lifecycle::close_notifies_other_attached_clients,
            lifecycle::attach_after_close_creates_a_new_queue,
            stats::flush_removes_messages_but_keeps_queue,
            stats::count_counts_unconsumed_messages,
            stats::ttl_reports_the_stored_ttl,
            stats::metadata_get_set_get_all_set_many,
            stats::metadata_empty_value_is_a_value,
            stats::pushed_and_consumed_count_this_clients_messages,
            stats::exists_works_without_attaching,
            stats::pushed_counts_a_push_as_soon_as_it_returns,
            push::push_returns_strictly_increasing_ids,
            push::ids_never_go_backwards_after_close_and_recreate,
            push::ids_never_go_backwards_after_expiry,
            push::push_before_attach_is_sent_once_attached,
            push::push_after_detach_is_an_error,
            push::push_to_full_queue_is_queue_full,
            push::maxsize_is_stored_with_the_queue,
            push::push_all_is_atomic_and_ordered,
            push::concurrent_pushes_keep_call_order,
            push::handles_pushing_at_once_keep_their_own_order,
            consume::producer_pushes_and_leaves_then_consumer_receives,
            consume::consumer_first_then_push_receives_once,
            consume::consumer_attaches_before_producer_receives_once,
            consume::five_pushed_before_consumer_are_received,
            consume::messages_arrive_in_push_order,
            consume::each_message_goes_to_exactly_one_consumer,
            consume::many_messages_over_many_queues,
            consume::consume_max_stops_after_n,
            consume::consume_twice_is_already_consuming,
            consume::stop_stops_delivery,
            consume::stop_returns_undelivered_messages_to_the_head_in_order,
            consume::dropped_consumer_returns_undelivered_messages,
            consume::undecodable_message_is_reported_with_its_id,
            consume::stop_after_max_returns_at_once,
            consume::dropped_consumer_frees_the_queue_for_a_new_consumer,
            replay::consume_without_removing_leaves_messages_for_the_next_consumer,
            replay::replay_from_index_and_from_id,
            replay::replay_consumers_read_independently,
            replay::replay_from_end_sees_only_new_messages,
            replay::mixing_removing_and_replaying_consumers_is_rejected,
            channel::channel_server_listens_client_connects,
            channel::channel_client_connects_server_listens,
            channel::channel_explicit_roles_just_connect,
            channel::late_peer_still_sees_remote_connect_and_earlier_messages,
            channel::remote_connect_once_per_session_never_from_data,
            channel::send_before_connect_is_not_connected,
            channel::send_to_reaches_an_endpoint_without_connecting,
            channel::structured_messages_stay_structured,
            channel::disconnect_leaves_the_channel_open_for_a_new_peer,
            channel::connect_twice_is_already_connected,
            service::service_serves_a_request,
            service::competing_servers_share_the_requests,
            service::killed_servers_request_is_answered_by_another,
            service::partial_then_final_replies_arrive_in_order,
            service::streamed_replies_arrive_in_order_and_end,
            service::serve_max_answers_that_many,
            service::graceful_stop_answers_requests_in_flight,
            service_failures::request_without_server_fails_fast,
            service_failures::request_deadline_expires_with_timeout,
            service_failures::handler_error_travels_back_as_service_failed,
            service_failures::undecodable_reply_is_a_decode_error,
            service_failures::service_headers_travel_both_ways,
            service_failures::late_reply_after_timeout_is_dropped,
            service_failures::final_reply_outlasts_a_failing_push,
            errors::invalid_names_are_rejected_before_the_store,
            errors::invalid_options_are_rejected,
            errors::oversize_message_is_rejected_and_nothing_written,
            errors::unencodable_message_writes_nothing,
            errors::long_queue_name_needs_a_named_dead_letter_queue,
            pubsub::pubsub_delivers_to_every_live_subscriber,
            pubsub::pubsub_does_not_store_messages,
            persisted::persisted_saves_and_loads_with_types_preserved,
            persisted::persisted_many_saves_and_loads,
            persisted::persisted_save_writes_only_changed_fields,
            persisted::persisted_concurrent_saves_conflict,
            persisted::persisted_delete_removes_the_object,
            persisted::persisted_expires_after_ttl_and_keep_alive_keeps_it,
            persisted::persisted_watchers_see_changes_once,
            persisted::persisted_watch_resyncs_after_a_missed_change,
            reliable::reliable_ack_removes_the_message,
            reliable::reliable_unacked_messages_come_back_in_order_after_stop,
            reliable::reliable_nack_and_drop_redeliver_at_once,
            reliable::reliable_visibility_timeout_redelivers_to_another_consumer,
            reliable::reliable_ack_after_max_is_accepted,
            reliable::reliable_slow_work_is_not_redelivered_while_held,
            reliable::reliable_dead_consumer_messages_come_back,
            reliable::reliable_an_idle_consumer_takes_back_a_dead_ones_delivery_at_its_deadline,
            reliable::reliable_aborted_consumer_task_loses_nothing,
            dead_letters::reliable_dead_letters_after_max_deliveries,
            dead_letters::reliable_reject_moves_to_the_configured_dead_letter_queue,
            dead_letters::reliable_undecodable_message_is_not_acknowledged,
            sharing::reliable_two_consumers_share_a_queue_without_loss,
            sharing::reliable_four_consumers_share_a_queue_without_loss,
            turns::reliable_consumers_of_one_bus_take_once_per_notice,
            turns::reliable_consumers_of_one_bus_share_a_backlog,
            turns::reliable_consumers_of_one_bus_outlast_a_stuck_take,
            reliable::reliable_detach_gives_back_held_messages,
            reliable::reliable_channel_peer_gets_unacknowledged_messages_after_reconnecting,
            reliable::retention_by_count_keeps_the_newest,
            reliable::retention_by_age_drops_old_messages,
            dead_letters::dead_letter_queue_is_an_ordinary_queue,
            retry::retry_nack_after_comes_back_after_the_delay_and_not_before,
            retry::retry_nack_after_survives_a_stop_and_goes_to_another_consumer,
            retry::retry_dropped_and_nacked_deliveries_follow_the_policy,
            retry::retry_failures_back_off_and_dead_letter_with_the_last_reason,
            retry::retry_delayed_nacks_still_dead_letter_after_max_deliveries,
            worker::worker_acks_on_ok,
            worker::worker_runs_at_most_concurrency_handlers_at_once,
            worker::worker_retries_errors_with_backoff_then_dead_letters_them,
            worker::worker_panic_is_a_failure_and_the_worker_goes_on,
            worker::worker_stop_finishes_in_flight_and_gives_back_the_rest,
            worker::worker_process_runs_until_consuming_ends,
            settle::reliable_failed_ack_comes_back_after_the_visibility_timeout,
            settle::reliable_ack_outlasts_a_blip,
            settle::reliable_stop_during_a_retrying_ack_does_not_release_it,
            settle::reliable_dead_letter_ack_outlasts_a_blip,
            settle::reliable_a_store_answering_for_fewer_settlements_is_a_typed_error,
            settle::reliable_stop_waits_for_a_dead_letter_ack_in_a_blip,
            settle::reliable_ack_whose_caller_stops_waiting_still_lands,
            settle::reliable_nack_after_whose_caller_stops_waiting_still_releases,
            settle::reliable_without_auto_extend_held_deliveries_come_back,
            settle::reliable_buffered_deliveries_past_their_visibility_are_not_handed_out,
            settle::reliable_entries_of_a_take_held_up_on_its_way_are_still_handed_out,
            redrive::dead_letters_are_listed_with_reason_and_delivery_count,
            redrive::redrive_all_moves_dead_letters_back_with_a_fresh_delivery_count,
            redrive::redrive_by_id_moves_only_those_and_reports_missing_ids,
            headers::headers_arrive_unchanged_at_most_once_and_on_replay,
            headers::headers_arrive_unchanged_with_reliable_deliveries_and_redeliveries,
            headers::headers_arrive_with_channel_messages,
            headers::dead_letters_and_redriven_messages_keep_their_headers,
            headers::invalid_header_keys_are_refused_and_nothing_is_written,
            headers::headers_count_towards_the_message_size_limit,
            dedupe::dedupe_push_returns_the_first_id_and_writes_nothing,
            dedupe::concurrent_keyed_pushes_write_once,
            dedupe::dedupe_key_expires_after_its_window,
            dedupe::invalid_dedupe_options_are_refused_and_nothing_is_written,
            delayed::delayed_message_is_invisible_until_due_then_delivered,
            delayed::delayed_messages_come_in_due_order_among_due_messages,
            delayed::delayed_message_is_not_replayed_before_due,
            delayed::delayed_message_reaches_reliable_consumers_with_its_headers,
            delayed::cancel_withdraws_a_scheduled_message_while_it_waits,
            delayed::invalid_schedules_are_refused_and_nothing_is_written,
            delayed::maxsize_counts_a_delayed_message_only_once_due,
            delayed::flush_and_close_remove_delayed_messages,
            priority::priorities_are_taken_highest_first_and_in_push_order_within_a_level,
            priority::concurrent_pushes_keep_their_own_level_and_key,
            priority::a_scheduled_message_comes_due_with_its_level_and_key,
            priority::invalid_priorities_and_ordering_keys_are_refused_and_nothing_is_written,
            priority::a_queue_with_retention_refuses_priorities_and_ordering_keys,
            ordering::a_keyed_message_waits_behind_its_keys_older_one_whatever_its_level,
            ordering::one_message_per_key_at_a_time_across_four_reliable_consumers,
            ordering::the_gate_stays_through_a_delayed_nack_and_passes_on_dead_lettering,
            ordering::a_worker_runs_one_job_per_key_at_a_time,
            push_retry::a_retrying_push_waits_for_the_store_and_is_written_once,
            push_retry::a_retrying_push_fails_with_the_last_error_after_its_deadline,
            push_retry::a_retried_push_whose_answer_was_lost_is_written_once,
            push_retry::a_detach_does_not_wait_out_a_retrying_push,
            store::store_connect_and_disconnect_report_each_state_transition_once,
            store::store_operations_outside_a_connection_fail_with_not_connected,
            store::store_attach_creates_once_and_later_attachers_adopt_the_stored_spec,
            store::store_attach_with_a_zero_ttl_is_an_invalid_option,
            store::store_concurrent_first_attachers_see_exactly_one_creator,
            store::store_renewals_keep_a_queue_alive_and_it_expires_after_the_detach,
            store::store_an_expired_queue_looks_like_one_that_never_existed,
            store::store_renew_recreates_a_vanished_incarnation_or_adopts_the_current_one,
            store::store_detach_of_another_generation_changes_nothing,
            store::store_ids_and_generations_never_go_backwards_across_close_and_expiry,
            store::store_close_leaves_a_tombstone_that_refuses_the_closed_generation,
            store::store_a_tombstone_outlives_twice_the_ttl,
            store::store_close_of_a_gone_queue_still_tombstones_its_generation,
            store::store_close_with_an_older_generation_destroys_the_current_incarnation,
            store::store_a_batch_gets_consecutive_ids_and_takes_come_out_in_push_order,
            store::store_take_of_zero_or_from_a_missing_queue_is_empty,
            store::store_two_stores_share_a_queue_and_each_message_goes_to_one_taker,
            store::store_a_push_to_a_vanished_queue_creates_it_from_the_callers_spec,
            store::store_an_empty_push_is_an_invalid_option,
            store::store_a_batch_that_would_overflow_maxsize_is_refused_whole,
            store::store_a_batch_too_big_for_a_new_queue_creates_nothing,
            store::store_restore_puts_entries_back_in_id_order_among_the_ready_ones,
            store::store_restore_keeps_id_order_next_to_released_entries,
            store::store_release_after_restore_keeps_id_order,
            store::store_restoring_an_entry_twice_puts_it_back_once,
            store::store_restore_into_a_closed_generation_is_refused_and_writes_nothing,
            store::store_restore_into_an_expired_generation_is_refused_and_writes_nothing,
            store::store_a_restore_wakes_a_blocked_taker_with_the_restored_entries_first,
            store::store_a_restored_entry_keeps_its_age_for_retention,
            store::store_payloads_and_dead_letter_information_survive_storage,
            store::store_headers_survive_pushes_takes_restores_and_reads,
            store::store_headers_survive_every_reliable_return,
            store::store_reliable_ack_with_its_receipt_removes_the_entry,
            store::store_reliable_settlements_apply_in_order_and_stale_ones_change_nothing,
            store::store_reliable_release_returns_entries_to_the_head_in_id_order,
            store::store_reliable_return_gives_the_delivery_back,
            store::store_reliable_expired_visibility_returns_entries_first_in_id_order,
            store::store_reliable_extend_moves_one_entrys_deadline_either_way,
            store::store_reliable_a_take_reports_the_earliest_pending_deadline,
            store::store_reliable_the_reported_deadline_follows_extensions,
            store::store_reliable_a_delayed_release_is_pending_until_its_deadline,
            store::store_reliable_repeated_extensions_keep_an_entry_from_other_takers,
            store::store_reliable_entries_past_max_deliveries_are_claimed_as_dead,
            store::store_reliable_flush_and_close_make_pending_settlements_stale,
            store::store_reads_start_where_the_position_says_and_remove_nothing,
            store::store_reads_count_positions_from_the_current_head,
            store::store_a_cursor_continuing_after_the_last_id_sees_only_new_messages,
            store::store_reading_a_missing_or_empty_queue_gives_nothing,
            store::store_reads_from_any_id_find_the_first_entry_at_or_after_it,
            store::store_reads_deep_into_a_long_queue_find_the_right_entries,
            store::store_retention_by_count_keeps_the_newest,
            store::store_retention_by_age_never_returns_older_messages,
            store::store_consumers_of_the_other_kind_are_refused_until_their_lease_lapses,
            store::store_closing_a_queue_forgets_its_consumers,
            store::store_stat_reports_counts_spec_and_generation_without_changing_anything,
            store::store_stat_counts_consumers_whose_lease_holds,
            store::store_listing_names_live_queues_and_no_closed_or_expired_one,
            store::store_listing_pages_through_cursors,
            store::store_flush_removes_messages_but_keeps_spec_metadata_and_ids,
            store::store_metadata_reads_and_writes_strings_and_refuses_writes_to_missing_queues,
            store::store_metadata_keys_never_clash_with_the_queues_own_fields,
            store::store_watchers_hear_pushes_from_another_store,
            store::store_a_watch_of_a_queue_that_does_not_exist_yet_hears_its_first_push,
            store::store_restores_releases_and_returns_wake_watchers,
            store::store_a_close_is_told_to_every_watcher,
            store::store_publish_reaches_every_live_subscription_exactly_once,
            store::store_disconnect_ends_this_stores_streams_only,
            store::store_blocking_take_returns_at_once_when_entries_are_ready,
            store::store_blocking_take_wakes_on_a_push,
            store::store_blocking_take_gives_up_after_its_wait,
            store::store_blocking_take_returns_promptly_on_cancel,
            store::store_dedupe_returns_the_first_id_and_writes_nothing,
            store::store_dedupe_key_expires_after_its_window,
            store::store_dedupe_comes_before_maxsize_and_after_the_tombstone,
            store::store_scheduled_entries_are_promoted_in_due_order_with_fresh_ids,
            store::store_cancel_withdraws_only_waiting_entries,
            store::store_schedule_follows_the_queue_lifecycle,
            store::store_takes_returned_entries_first_then_levels_high_to_low,
            store::store_a_key_has_one_entry_out_until_its_delivery_is_acked,
            store::store_dead_lettering_passes_the_gate_on_its_ack,
            store::store_at_most_once_takes_pass_the_gate_and_restores_come_first,
            store::store_waiting_entries_count_and_go_with_a_flush,
            store::store_scheduled_entries_come_due_with_their_level_and_key,
            store::store_a_mixed_batch_routes_each_entry_by_its_own_level_and_key,
            store::store_refuses_bad_or_retained_routing_and_writes_nothing,
            store::store_blocking_take_loses_nothing_it_took_when_cancelled,
            store::store_object_saves_bump_the_version_and_loads_read_every_field,
            store::store_object_a_save_that_expects_another_version_writes_nothing,
            store::store_object_a_partial_save_keeps_the_other_fields,
            store::store_object_delete_removes_it_and_later_versions_are_larger,
            store::store_object_expires_ttl_after_the_last_save_or_touch,
            // Named `model_...`: see `MODEL_PREFIX`.
            models::model_store_queue_behaves_like_a_deque,
            models::model_queue_api_behaves_like_a_fifo,
            models::model_reliable_consumption_loses_nothing,
            models::model_delayed_messages_follow_their_due_times,
            models::model_priorities_and_keys_follow_the_take_order,
            models::model_scheduled_messages_are_routed_by_level_and_key_when_due,
        ]}
    };
    (@expand tests ($make:expr) [$($module:ident :: $name:ident),* $(,)?]) => {
        $(
            #[tokio::test]
            async fn $name() {
                fn case<'a>(
                    backend: &'a dyn $crate::Backend,
                ) -> $crate::BoxFuture<'a, ()> {
                    ::std::boxed::Box::pin($crate::cases::$module::$name(backend))
                }
                let backend = $make;
                $crate::run_case(&backend, stringify!($name), case).await;
            }
        )*
    };
    (@expand registry () [$($module:ident :: $name:ident),* $(,)?]) => {{
        let mut all = ::std::vec::Vec::new();
        $({
            fn case<'a>(backend: &'a dyn $crate::Backend) -> $crate::BoxFuture<'a, ()> {
                ::std::boxed::Box::pin($crate::cases::$module::$name(backend))
            }
            // Checked here, where the module is known: the prefix is what gives a model case
            // its deadline per sequence.
            assert!(
                stringify!($module) != "models"
                    || stringify!($name).starts_with($crate::registry::MODEL_PREFIX),
                "model case {} is not named model_...",
                stringify!($name),
            );
            all.push($crate::Case { name: stringify!($name), run: case });
        })*
        all
    }};
}

/// Generates one `#[tokio::test]` per conformance case, each calling the expression to get a
/// fresh [`Backend`](crate::Backend). The test crate needs `tokio` (with `macros`, `rt`) and
/// `futures` as dev-dependencies.
#[macro_export]
macro_rules! conformance {
    ($make:expr) => {
        $crate::__busmq_cases!(tests($make));
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn case_names_are_unique() {
        let mut names: Vec<_> = super::all_cases().iter().map(|c| c.name).collect();
        let total = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), total);
        assert!(total >= 45, "the suite has {total} cases");
    }
}
