//! OperatorService. Search attributes, namespace deletion and Nexus endpoints come with the
//! visibility work; until then every RPC answers `Unimplemented` naming itself.

use chronicle_api::operatorservice::operator_service_server::OperatorService;

pub struct Operator;

impl OperatorService for Operator {}
