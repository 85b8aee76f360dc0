//! The `file` sink: Firehose-style objects in a local directory (see [`super::objects`] for
//! what it shares with `s3`). Its settings are [`crate::config::objects::FileSinkConfig`].

use super::objects::roles::{object_destination, Destination};
use super::objects::Store;
use super::BoxFuture;
use crate::config::{ErrorsConfig, FileSinkConfig, ObjectOptions};

impl Destination for FileSinkConfig {
    fn store(&self) -> BoxFuture<Store> {
        let path = self.path.clone();
        Box::pin(async move { Store::Dir(path) })
    }
    fn options(&self) -> &ObjectOptions {
        &self.objects
    }
    fn options_mut(&mut self) -> &mut ObjectOptions {
        &mut self.objects
    }
    fn into_errors(self) -> ErrorsConfig {
        ErrorsConfig::File(self)
    }
}

object_destination!(FileSinkConfig);
