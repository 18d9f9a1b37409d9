//! The request builder's tests.

mod checks {
    use super::super::check::*;
    use super::super::*;
    use crate::Error;
    use serde_json::json;

    fn krea() -> Krea {
        Krea::builder()
            .token("t")
            .base_url("http://127.0.0.1:9")
            .build()
            .expect("client")
    }

    #[test]
    fn a_valid_request_gives_the_body_to_send() {
        let crate::Checked {
            model,
            body,
            estimate,
            ..
        } = krea()
            .image("flux")
            .prompt("a lighthouse")
            .width(1024)
            .seed(7)
            .check()
            .expect("valid");
        assert_eq!(estimate.and_then(|e| e.exact()), Some(3.0));
        assert_eq!(model.id, "bfl/flux-1-dev");
        assert_eq!(
            body,
            json!({"prompt": "a lighthouse", "width": 1024, "seed": 7})
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = krea()
            .image("flux")
            .prompt("x".repeat(2000))
            .width(9000)
            .duration(5)
            .check()
            .expect_err("invalid");
        let Error::InvalidRequest { problems, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| {
            p.field.as_deref() == Some("duration")
                && p.message
                    .starts_with("bfl/flux-1-dev has no such parameter")
        }));
    }

    #[test]
    fn deprecated_camel_case_is_sent_as_snake_case() {
        let body = krea()
            .generate(
                "nano banana 2",
                json!({"prompt": "cat", "imageUrls": ["https://example.com/a.png"]}),
            )
            .check()
            .expect("valid")
            .body;
        assert_eq!(body["image_urls"][0], "https://example.com/a.png");
        assert!(body.get("imageUrls").is_none());
    }

    #[test]
    fn image_urls_go_where_the_model_takes_them() {
        let body = krea()
            .image("nano2")
            .prompt("cat")
            .image_url("https://e.com/a.png")
            .image_url("https://e.com/b.png")
            .check()
            .expect("valid")
            .body;
        assert_eq!(
            body["image_urls"],
            json!(["https://e.com/a.png", "https://e.com/b.png"])
        );
        let body = krea()
            .image("flux")
            .prompt("cat")
            .image_url("https://e.com/a.png")
            .check()
            .expect("valid")
            .body;
        assert_eq!(body["image_url"], "https://e.com/a.png");
        let body = krea()
            .video("kling/kling-2.1")
            .prompt("waves")
            .image_url("https://e.com/a.png")
            .check()
            .expect("valid")
            .body;
        assert_eq!(body["start_image"], "https://e.com/a.png");
    }

    #[test]
    fn the_kind_must_match() {
        let err = krea()
            .image("kling/kling-2.1")
            .prompt("waves")
            .check()
            .expect_err("a video model");
        assert!(
            err.to_string().contains("a video model, not an image"),
            "{err}"
        );
    }

    #[test]
    fn model_errors_keep_their_type() {
        assert!(matches!(
            krea().image("seedream-3").prompt("x").check(),
            Err(Error::ModelRetired { .. })
        ));
        match krea().image("fluxx").prompt("x").check() {
            Err(Error::UnknownModel { suggestions, .. }) => assert!(!suggestions.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn webhooks_must_be_https_or_loopback() {
        assert!(check_webhook_url("https://hooks.example.com/krea").is_ok());
        assert!(check_webhook_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_webhook_url("http://hooks.example.com/krea").is_err());
        assert!(check_webhook_url("/relative").is_err());
        let err = krea()
            .image("flux")
            .prompt("x")
            .webhook("http://evil.example/h")
            .check()
            .expect_err("refused");
        assert!(err.to_string().contains("webhook"));
    }
}

mod sizes_and_inputs {

    use super::super::*;
    use serde_json::json;

    fn krea() -> Krea {
        Krea::builder()
            .token("t")
            .base_url("http://127.0.0.1:9")
            .build()
            .expect("client")
    }

    #[test]
    fn an_aspect_ratio_becomes_a_size_where_the_model_takes_one() {
        let c = krea()
            .image("flux")
            .prompt("x")
            .aspect_ratio("16:9")
            .check()
            .expect("valid");
        assert_eq!(
            (c.body["width"].clone(), c.body["height"].clone()),
            (json!(1344), json!(768))
        );
        let c = krea()
            .image("nano2")
            .prompt("a cat")
            .aspect_ratio("16:9")
            .check()
            .expect("valid");
        assert_eq!(c.body["aspect_ratio"], "16:9");
    }

    #[test]
    fn a_prompt_alone_is_enough_for_every_image_model_that_needs_no_input() {
        for m in crate::models::of_kind(Kind::Image) {
            let needs_input = m
                .required()
                .any(|p| p.name.contains("image") || p.name.contains("reference"));
            if needs_input {
                continue;
            }
            let c = krea().image(&m.id).prompt("a lighthouse").check();
            assert!(c.is_ok(), "{}: {c:?}", m.id);
        }
    }

    #[test]
    fn local_inputs_are_checked_and_placed_as_placeholders() {
        let err = krea()
            .image("flux")
            .prompt("x")
            .image("/nonexistent/photo.png")
            .check()
            .expect_err("missing file");
        assert!(err.to_string().contains("image_url: cannot read"), "{err}");
        let dir = tempfile::Builder::new()
            .prefix("krea-input-")
            .tempdir()
            .expect("scratch");
        let png = dir.path().join("in.png");
        std::fs::write(&png, krea_png()).expect("write");
        let c = krea()
            .enhance("topaz")
            .image(png.as_path())
            .scale(2.0)
            .check()
            .expect("valid");
        assert!(
            c.body["image_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("https://uploads.invalid/"))
        );
        assert_eq!(
            (c.body["width"].clone(), c.body["height"].clone()),
            (json!(6), json!(4))
        );
    }

    #[test]
    fn an_output_file_must_suit_the_model_and_not_exist() {
        let err = krea()
            .image("flux")
            .prompt("x")
            .output_file("/tmp/out.mp4")
            .check()
            .expect_err("a video name for an image");
        assert!(err.to_string().contains("extensions"), "{err}");
        let dir = tempfile::Builder::new()
            .prefix("krea-exists-")
            .tempdir()
            .expect("scratch");
        let existing = dir.path().join("taken.png");
        std::fs::write(&existing, b"x").expect("write");
        let err = krea()
            .image("flux")
            .prompt("x")
            .output_file(&existing)
            .check()
            .expect_err("exists");
        assert!(err.to_string().contains("exists"), "{err}");
        assert!(
            krea()
                .image("flux")
                .prompt("x")
                .output_file(&existing)
                .overwrite(true)
                .check()
                .is_ok()
        );
    }

    fn krea_png() -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        v.extend_from_slice(&3u32.to_be_bytes());
        v.extend_from_slice(&2u32.to_be_bytes());
        v.extend_from_slice(&[8, 6, 0, 0, 0]);
        v
    }
}
