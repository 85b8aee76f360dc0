//! The S3 sink's store: a bucket reached through `aws-sdk-s3` (any S3-compatible endpoint),
//! single PutObject below the multipart threshold, multipart uploads above it (aborted on
//! failure, so no parts are left to be billed for). The buffering, keys and formats are
//! [`super::objects`]'s, shared with the `file` sink.

use std::sync::Arc;

use bytes::Bytes;

use super::objects::roles::{object_destination, Destination};
use super::objects::Store;
use super::BoxFuture;
use crate::config::{ErrorsConfig, ObjectOptions, S3SinkConfig};

impl Destination for S3SinkConfig {
    fn store(&self) -> BoxFuture<Store> {
        let c = self.clone();
        Box::pin(async move { Store::S3(Arc::new(s3_store(&c).await)) })
    }
    fn options(&self) -> &ObjectOptions {
        &self.objects
    }
    fn options_mut(&mut self) -> &mut ObjectOptions {
        &mut self.objects
    }
    fn into_errors(self) -> ErrorsConfig {
        ErrorsConfig::S3(self)
    }
}

object_destination!(S3SinkConfig);

/// S3 keys are at most 1,024 bytes of UTF-8.
pub const S3_MAX_KEY: usize = 1024;

/// An S3 bucket, with multipart uploads for large objects.
pub struct S3Store {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
    pub multipart_threshold: u64,
    pub part_size: u64,
}

/// An S3 client for an S3 sink's region, endpoint and addressing style.
pub async fn s3_store(c: &S3SinkConfig) -> S3Store {
    S3Store {
        client: crate::aws::s3_client(
            c.region.as_deref(),
            c.endpoint.as_deref(),
            c.force_path_style,
        )
        .await,
        bucket: c.bucket.clone(),
        multipart_threshold: c.multipart_threshold,
        part_size: c.part_size,
    }
}

impl S3Store {
    pub(crate) async fn put(
        &self,
        key: &str,
        body: Bytes,
        encoding: Option<&'static str>,
    ) -> Result<(), String> {
        use aws_sdk_s3::error::DisplayErrorContext;
        use aws_sdk_s3::primitives::ByteStream;
        if (body.len() as u64) < self.multipart_threshold {
            return self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .set_content_encoding(encoding.map(str::to_string))
                .body(ByteStream::from(body))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("PutObject: {}", DisplayErrorContext(&e)));
        }
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_content_encoding(encoding.map(str::to_string))
            .send()
            .await
            .map_err(|e| format!("CreateMultipartUpload: {}", DisplayErrorContext(&e)))?;
        let id = upload
            .upload_id()
            .ok_or("CreateMultipartUpload gave no upload id")?
            .to_string();
        let result = self.upload_parts(key, &id, body).await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                // Leave no parts behind to be billed for.
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&id)
                    .send()
                    .await;
                Err(e)
            }
        }
    }

    async fn upload_parts(&self, key: &str, id: &str, body: Bytes) -> Result<(), String> {
        use aws_sdk_s3::error::DisplayErrorContext;
        use aws_sdk_s3::primitives::ByteStream;
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        let mut parts = Vec::new();
        let size = self.part_size as usize;
        for (i, start) in (0..body.len()).step_by(size).enumerate() {
            let number = i as i32 + 1;
            let chunk = body.slice(start..(start + size).min(body.len()));
            let out = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(id)
                .part_number(number)
                .body(ByteStream::from(chunk))
                .send()
                .await
                .map_err(|e| format!("UploadPart {number}: {}", DisplayErrorContext(&e)))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build(),
            );
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("CompleteMultipartUpload: {}", DisplayErrorContext(&e)))
    }
}
